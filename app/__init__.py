"""msvae annotation service: FastAPI app, candidate database, command line."""
