"""Django's admin site, a real third-party application, for the compatibility suite.

Django, gunicorn (the WSGI server) and WhiteNoise (so the admin's own CSS and JavaScript are
served with DEBUG off) are installed once from PyPI into their own virtual environment under
`.compat/` (gitignored) and reused by later runs. Each test session generates a fresh project
with `django-admin startproject`, migrates its SQLite database, creates two superusers with
`createsuperuser --noinput`, and serves it with gunicorn on a free port. Gunicorn's access log
records the Authorization header of each request it gets, so a test can tell whether a
credential reached the application.

The generic pieces (the cached environment, the server process) are in support.py; the session
fixture `django_admin` is in conftest.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from tests.compat.support import RunningApp, ServerProcess, cached_venv, run, timed
from tests.support import free_port

DJANGO_VERSION = "5.2.19"
REQUIREMENTS = [f"Django=={DJANGO_VERSION}", "gunicorn==27.0.1", "whitenoise==6.12.0"]

ALICE = "alice@example.com"
ALICE_PASSWORD = "alice-Django-pw-1"
MALLORY = "mallory@example.com"
MALLORY_PASSWORD = "mallory-Django-pw-1"

ACCESS_LOG_FORMAT = "%(m)s %(U)s?%(q)s %(s)s auth=%({authorization}i)s"

# appended to the generated settings.py
SETTINGS_TAIL = """
# --- added by tests/compat/app_django.py ---
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
"""


@dataclass
class DjangoAdmin(RunningApp):
    """A running Django admin site: its server, project and access log."""

    project: Path
    venv: Path
    timings: dict[str, float]
    access_log: Path

    def seen(self, marker: str) -> list[str]:
        """The access log lines of the requests whose URL holds `marker` (each ends with
        `auth=<the Authorization header the application got, or ->`)."""
        time.sleep(0.2)  # gunicorn writes the line once the answer is sent
        return [line for line in self.access_log.read_text().splitlines() if marker in line]

    def last_login(self, user: str) -> str | None:
        """When Django last signed `user` in (auth_user.last_login), read from its database."""
        with contextlib.closing(sqlite3.connect(self.project / "db.sqlite3")) as db:
            row = db.execute("SELECT last_login FROM auth_user WHERE username = ?", (user,))
            found = row.fetchone()
        return None if found is None else found[0]


def start_django_admin(tmp: Path) -> DjangoAdmin:
    """Installs (once), generates a project under `tmp`, and serves it on a free port."""
    timings: dict[str, float] = {}
    with timed("install", timings):
        venv = cached_venv(f"django-{DJANGO_VERSION}", REQUIREMENTS)
    python = str(venv / "bin" / "python")
    project = tmp / "site"
    project.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    with timed("project", timings):
        run([str(venv / "bin" / "django-admin"), "startproject", "compatsite", str(project)])
        settings = project / "compatsite" / "settings.py"
        settings.write_text(settings.read_text() + SETTINGS_TAIL)
        run([python, "manage.py", "migrate", "--noinput"], cwd=project, env=env)
        for user, password in ((ALICE, ALICE_PASSWORD), (MALLORY, MALLORY_PASSWORD)):
            run(
                [python, "manage.py", "createsuperuser", "--noinput",
                 "--username", user, "--email", user],
                cwd=project, env={**env, "DJANGO_SUPERUSER_PASSWORD": password},
            )  # fmt: skip
        run([python, "manage.py", "collectstatic", "--noinput"], cwd=project, env=env)
    port = free_port()
    with timed("start", timings):
        server = ServerProcess(
            [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "--threads", "8", "--no-control-socket", "--access-logfile", str(tmp / "access.log"),
             "--access-logformat", ACCESS_LOG_FORMAT, "compatsite.wsgi:application"],
            port, tmp / "gunicorn.log", "/admin/login/", cwd=project, env=env,
        )  # fmt: skip
    return DjangoAdmin(server, project, venv, timings, tmp / "access.log")
