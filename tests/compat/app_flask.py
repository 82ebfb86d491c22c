"""calibre-web, a real third-party Flask-Login application with a remember-me cookie, for the
compatibility suite.

calibre-web (PyPI `calibreweb`) is installed once into its own virtual environment under
`.compat/`, and a template of its data is made once beside it:

1. `cps -p app.db -s admin:PASSWORD`: calibre-web creates its settings database (with its
   default `admin` account) and exits;
2. a short script run with calibre-web's own Python makes an empty Calibre library
   (`metadata.db`, from calibre-web's own SQLAlchemy models of Calibre's tables: without a
   library calibre-web shows nothing but its database set-up page), renames `admin` to an
   address the test policy places in a company, and adds a second, non-admin account.

Each test session copies the template under tmp, points it (with sqlite3) at its library, a free
port and an access log, turns calibre-web's login rate limit off (3 logins a minute per user
name, which the tests reach: see NOTES-django-flask.md), and runs `cps`, whose server is Tornado.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from tests.compat.support import RunningApp, ServerProcess, cached, cached_venv, run, timed
from tests.support import free_port

CALIBREWEB_VERSION = "0.6.27"
REQUIREMENTS = [f"calibreweb=={CALIBREWEB_VERSION}"]

ALICE = "alice@example.com"
ALICE_PASSWORD = "Alice-calibre-pw-1!"
MALLORY = "mallory@example.com"
MALLORY_PASSWORD = "Mallory-calibre-pw-1!"

TEMPLATE_SCRIPT = """
import sqlite3, sys, uuid
from sqlalchemy import create_engine
from werkzeug.security import generate_password_hash
from calibreweb.cps import db

app_db, library, alice, alice_pw, mallory, mallory_pw = sys.argv[1:]
engine = create_engine("sqlite:///" + library + "/metadata.db")
db.Base.metadata.create_all(engine.execution_options(schema_translate_map={"calibre": None}))
library_uuid = str(uuid.uuid4())
with sqlite3.connect(library + "/metadata.db") as con:
    con.execute("INSERT INTO library_id(uuid) VALUES (?)", (library_uuid,))
with sqlite3.connect(app_db) as con:
    con.execute("UPDATE settings SET config_calibre_uuid = ?", (library_uuid,))
    con.execute(
        "UPDATE user SET name = ?, email = ?, password = ? WHERE name = 'admin'",
        (alice, alice, generate_password_hash(alice_pw)),
    )
    columns = [row[1] for row in con.execute("PRAGMA table_info(user)") if row[1] != "id"]
    values = {
        "name": mallory,
        "email": mallory,
        "password": generate_password_hash(mallory_pw),
        "role": 2 + 16 + 256,  # download, change own password, view: not an admin
    }
    select = ", ".join("?" if c in values else c for c in columns)
    con.execute(
        f"INSERT INTO user ({', '.join(columns)}) SELECT {select} FROM user WHERE name = ?",
        [values[c] for c in columns if c in values] + [alice],
    )
"""


def clean_env(venv: Path, **extra: str) -> dict[str, str]:
    """The environment without calibre-web's own variables, plus `extra`. PATH is the virtual
    environment's bin alone: without ImageMagick, each of calibre-web's several imports of Wand
    asks ctypes.util.find_library for 24 library names, which runs gcc and ld for each when they
    are on the PATH, and that makes calibre-web start in 9 s instead of under 3."""
    prefixes = ("CALIBRE", "CACHE_DIR", "COOKIE_PREFIX", "FLASK", "APP_MODE")
    kept = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**kept, "PATH": str(venv / "bin"), **extra}


def cached_template(venv: Path) -> Path:
    """The template data (config/app.db, library/metadata.db) beside the installed calibre-web,
    made once (cached)."""
    target = venv.parent / f"{venv.name}-data"

    def build() -> None:
        (target / "config").mkdir(parents=True)
        (target / "library").mkdir()
        env = clean_env(
            venv, CALIBRE_DBPATH=str(target / "config"), CACHE_DIRECTORY=str(target / "cache")
        )
        app_db = str(target / "config" / "app.db")
        run([str(venv / "bin" / "cps"), "-p", app_db, "-s", "admin:Initial-pw-1!"], env=env)
        run(
            [str(venv / "bin" / "python"), "-c", TEMPLATE_SCRIPT, app_db,
             str(target / "library"), ALICE, ALICE_PASSWORD, MALLORY, MALLORY_PASSWORD],
            env=env, cwd=target,
        )  # fmt: skip

    return cached(target, TEMPLATE_SCRIPT + ALICE_PASSWORD + MALLORY_PASSWORD, build)


@dataclass
class CalibreWeb(RunningApp):
    """A running calibre-web: its server and access log."""

    timings: dict[str, float]
    access_log: Path

    def seen(self, marker: str) -> list[str]:
        """The access log lines (Tornado's: status, method, URL, address) of the requests whose
        URL holds `marker`."""
        time.sleep(0.2)  # the line is written once the answer is sent
        logs = sorted(self.access_log.parent.glob(self.access_log.name + "*"))  # it rotates
        return [line for log in logs for line in log.read_text().splitlines() if marker in line]


def start_calibreweb(tmp: Path) -> CalibreWeb:
    """Installs (once), copies the template data under `tmp`, and starts calibre-web on a free
    port."""
    timings: dict[str, float] = {}
    with timed("install", timings):
        venv = cached_venv(f"calibreweb-{CALIBREWEB_VERSION}", REQUIREMENTS)
        template = cached_template(venv)
    port = free_port()
    config, library, access_log = tmp / "config", tmp / "library", tmp / "access.log"
    with timed("setup", timings):
        shutil.copytree(template / "config", config)
        shutil.copytree(template / "library", library)
        with contextlib.closing(sqlite3.connect(config / "app.db")) as con, con:
            con.execute(
                "UPDATE settings SET config_calibre_dir = ?, config_port = ?,"
                " config_ratelimiter = 0, config_access_log = 1, config_access_logfile = ?",
                (str(library), port, str(access_log)),
            )
    env = clean_env(venv, CALIBRE_DBPATH=str(config), CACHE_DIRECTORY=str(tmp / "cache"))
    with timed("start", timings):
        server = ServerProcess(
            [str(venv / "bin" / "cps"), "-p", str(config / "app.db"), "-i", "127.0.0.1",
             "-o", str(tmp / "calibre-web.log")],
            port, tmp / "cps.out", "/login", cwd=tmp, env=env,
        )  # fmt: skip
    return CalibreWeb(server, timings, access_log)
