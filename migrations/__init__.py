"""Alembic migrations of the msvae database (``env.py`` and ``versions/``), shipped as a package so an installed
``msvae`` finds them whatever the working directory. The service runs them through :mod:`app.db.migrate`, which
points Alembic at this folder without importing it; only ``env.py`` imports the service's tables."""
