"""netboot's alembic environment, shipped inside the package and driven from code (no ``alembic.ini``).

:mod:`netboot.store.migrate` runs it: ``env.py`` takes the connection that module hands over, and
``versions/`` holds one file per schema revision, oldest first (``0001`` is release 0.1.0's schema as its
``create_all`` made it). To change the schema, edit :mod:`netboot.store.schema` and add the next revision
beside the others; ``netboot.store.migrate.new_revision`` writes its skeleton with the differences filled in.
"""
