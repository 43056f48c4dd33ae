"""Video in and out: frames cut from films (``posterforge frames``) and translated clips."""
