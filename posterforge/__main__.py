from posterforge.cli import main

main()
