"""Alembic's environment for the store (env.py) and its migrations (versions/).

Inside the package, so an installed tulpar can migrate its database: run them
with `tulpar db upgrade` (services/store/schema.py configures Alembic in code;
there is no alembic.ini). A new revision: write versions/NNNN_what.py by hand
or with `alembic revision` pointed at this folder, with down_revision the
previous head.
"""
