"""The CLI edge: --help without torch, --version, listing commands, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from posterforge import __version__


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from posterforge.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
        "print(*(m in sys.modules for m in ('torch', 'numpy', 'posterforge.cli.reference')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False False"
    assert "Usage: posterforge" in out.stdout


def test_listing_commands_do_not_import_torch():
    code = (
        "import sys\n"
        "from posterforge.cli import main\n"
        "for args in (['styles', '--json'], ['plugins', '--json'], ['generators', '--json']):\n"
        "    try:\n        main(args)\n    except SystemExit as e:\n        assert e.code == 0\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "False"


def test_version(inproc):
    r = inproc("--version")
    assert (r.code, r.out.strip()) == (0, f"posterforge {__version__}")


def test_styles_lists_presets_with_weight_status(inproc):
    r = inproc("styles", "--json")
    assert r.code == 0
    styles = {s["name"]: s for s in json.loads(r.out)}
    assert {"vintage", "yourname", "spiritedaway"} <= set(styles)
    assert styles["vintage"]["status"] == "importable"  # shipped by vintagify, not yet imported
    assert styles["yourname"]["status"] == "missing"
    assert "posterforge weights import" in styles["yourname"]["how_to_get"]


def test_styles_table_for_people(inproc):
    r = inproc("styles")
    assert r.code == 0 and "vintage" in r.out and "importable" in r.out


def test_generators_lists_architectures(inproc):
    r = inproc("generators", "--json")
    assert r.code == 0
    data = json.loads(r.out)
    assert set(data) == {"models", "architectures"}


def test_unknown_command_is_a_usage_error(inproc):
    r = inproc("no-such-command")
    assert r.code == 2 and "No such command" in r.err
