"""Log-in: server URL, user name, password. Online once; afterwards the app opens without a network.

Shown again when the server refuses the device token (a sync's ``needs_login``):
nothing captured is touched, and the sync after the log-in sends it all.
"""

from __future__ import annotations

from typing import Any

from kivy.metrics import dp
from kivy.uix.anchorlayout import AnchorLayout

from ... import i18n
from ...app_core import LoginFailed, default_device_name, run_off_ui
from ..app import schedule
from ..widgets import WARN, Card, Field, FlatButton, Text, Title
from .base import BaseScreen


class LoginScreen(BaseScreen):
    """The log-in form."""

    title_key = "login.title"
    back_to = None

    def build(self) -> None:
        self.again = False
        self.busy = False
        holder = AnchorLayout(anchor_x="center", anchor_y="top")
        card = Card(size_hint_x=None, width=dp(640))
        self.heading = Title()
        self.hint = Text()
        self.server_label, self.server = Text(), Field(multiline=False, input_type="url")
        self.user_label, self.username = Text(), Field(multiline=False)
        self.password_label, self.password = Text(), Field(multiline=False, password=True)
        self.device_label, self.device_name = Text(), Field(multiline=False)
        self.submit = FlatButton()
        self.submit.bind(on_release=lambda *_: self.submit_login())
        self.password.bind(on_text_validate=lambda *_: self.submit_login())
        self.code_label, self.code = Text(), Field(multiline=False)
        self.code_submit = FlatButton()
        self.code_submit.bind(on_release=lambda *_: self.submit_code())
        self.code.bind(on_text_validate=lambda *_: self.submit_code())
        for widget in (self.heading, self.hint, self.server_label, self.server, self.user_label, self.username,
                       self.password_label, self.password, self.device_label, self.device_name, self.submit,
                       self.code_label, self.code, self.code_submit):
            card.add_widget(widget)
        holder.add_widget(card)
        self.body.add_widget(holder)

    def prepare(self, again: bool = False, **params: Any) -> None:
        """again=True: the token was refused; say so and keep the user name."""
        self.again = again

    def refresh(self) -> None:
        super().refresh()
        self.heading.text = i18n.t("app.title")
        self.hint.text = i18n.t("login.again" if self.again else "login.hint")
        self.hint.tint = WARN if self.again else self.hint.tint
        self.server_label.text = i18n.t("login.server")
        self.user_label.text = i18n.t("login.username")
        self.password_label.text = i18n.t("login.password")
        self.submit.text = i18n.t("login.busy" if self.busy else "login.submit")
        self.device_label.text = i18n.t("login.device_name")
        if not self.device_name.text:
            self.device_name.text = default_device_name(self.core.store.node)
        self.code_label.text = i18n.t("login.code")
        self.code_submit.text = i18n.t("login.code_submit")
        if not self.server.text:
            self.server.text = self.core.settings.server_url or self.app.default_server_url or ""
        user = self.core.user
        if not self.username.text and user:
            self.username.text = user.get("username") or ""

    def submit_login(self) -> None:
        """Log in off the UI thread; the answer comes back through schedule."""
        if self.busy:
            return
        url, username, password = self.server.text.strip(), self.username.text.strip(), self.password.text
        if not (url and username and password):
            self.say(i18n.t("login.missing"), "error")
            return
        device = self._device_name()
        self._start(lambda: self.core.login(url, username, password, device_name=device))

    def submit_code(self) -> None:
        """Log in with a one-time code (or a provisioning QR code's text, which also names the server)."""
        if self.busy:
            return
        url, code = self.server.text.strip(), self.code.text.strip()
        if not code or not (url or code.startswith("gridpatrol:")):
            self.say(i18n.t("login.code_missing"), "error")
            return
        device = self._device_name()
        self._start(lambda: self.core.login_with_code(url, code, device_name=device))

    def _device_name(self) -> str:
        """The name the server lists this tablet under (admins tell tablets apart by it), at most 200 characters."""
        return (self.device_name.text.strip() or default_device_name(self.core.store.node))[:200]

    def _start(self, log_in) -> None:
        self.busy = True
        self.submit.disabled = self.code_submit.disabled = True
        self.refresh()
        self.say(i18n.t("login.busy"))
        run_off_ui(schedule, log_in, self._logged_in, self._failed)

    def _logged_in(self, _result: Any) -> None:
        self.busy = False
        self.submit.disabled = self.code_submit.disabled = False
        self.code.text = ""
        self.again = False
        self.password.text = ""
        self.say("")
        self.app.logged_in()

    def _failed(self, exc: BaseException) -> None:
        self.busy = False
        self.submit.disabled = self.code_submit.disabled = False
        self.refresh()
        if isinstance(exc, LoginFailed):
            key = f"login.error.{exc.code}"
            text = i18n.t(key) if key in i18n.CATALOG[i18n.language()] else exc.message
        else:
            text = f"{type(exc).__name__}: {exc}"
        self.say(i18n.t("login.failed", message=text), "error")
