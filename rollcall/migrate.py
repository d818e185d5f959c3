"""Apply every migration: the registry root and each service's branch (`alembic upgrade heads`)."""

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

import services
import shared

ROOT = Path(shared.__file__).parent / "migrations"
SERVICES = ("ingest", "aggregate", "alerts", "notify", "signoff", "console", "ledger")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT))
    config.set_main_option("path_separator", "os")
    locations = [ROOT / "versions"] + [
        Path(services.__file__).parent / name / "migrations" for name in SERVICES]
    config.set_main_option("version_locations", os.pathsep.join(map(str, locations)))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "heads")
