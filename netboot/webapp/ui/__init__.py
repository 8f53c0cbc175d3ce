"""The admin UI under ``/ui``: server-rendered HTML, one form per action, CSRF on every form.

Everything is escaped by Jinja's autoescape (templates end in ``.html``; nothing is marked safe), and the
Content-Security-Policy allows scripts and styles only from this server, so a hostname, a variable or a
path a machine sent is shown as text, never run. The only JavaScript is ``static/timeline.js``, which polls
``/api/v1/systems/<mac>/events`` with the session cookie and adds rows with ``textContent``.
"""

from netboot.webapp.ui import accounts, session, systems
from netboot.webapp.ui.blueprint import ui

__all__ = ["accounts", "session", "systems", "ui"]
