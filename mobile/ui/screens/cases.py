"""My cases: every event the worker reported, awaiting-my-verification first, in a RecycleView.

A RecycleView builds widgets only for the rows on screen and reuses them as
the list scrolls, so thousands of cases scroll as smoothly as ten. Rows are
plain dicts made from CasesPresenter's rows (one fold per case, two queries).

The rows are made off the UI thread (mobile/ui/loading.py, as Home's figures): the
first fold after the app starts folds every case, over a second with
thousands of them, and must not freeze the app. Meanwhile a loading line
(a spinner and the seconds) stands where the list will be.
"""

from __future__ import annotations

from typing import Any

from kivy.lang import Builder
from kivy.metrics import dp
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.recycleview import RecycleView

from ... import i18n
from ...presenters import CasesPresenter
from ..format import local_time
from ..loading import ScreenLoad
from ..widgets import ListRow, Text
from .base import BaseScreen

ROW_HEIGHT = dp(104)

Builder.load_string("""
<CaseRowView>:
    fill: (1, 0.957, 0.839, 1) if self.awaiting else ((0.88, 0.92, 0.97, 1) if self.state == 'down' else (1, 1, 1, 1))
    stripe: (0.78, 0.16, 0.16, 1) if self.urgent else ((0.7, 0.42, 0, 1) if self.awaiting else (0, 0, 0, 0))
    BoxLayout:
        orientation: 'vertical'
        size_hint_x: None
        width: dp(260)
        Label:
            text: root.status_text
            color: (0.7, 0.42, 0, 1) if root.awaiting else (0.08, 0.4, 0.75, 1)
            font_size: '22sp'
            bold: True
            text_size: self.size
            halign: 'right'
            valign: 'middle'
        Label:
            text: root.badges
            color: 0.78, 0.16, 0.16, 1
            font_size: '18sp'
            text_size: self.size
            halign: 'right'
            valign: 'middle'

<CasesList>:
    viewclass: 'CaseRowView'
    bar_width: dp(10)
    scroll_type: ['bars', 'content']
    RecycleBoxLayout:
        default_size: None, dp(104)
        default_size_hint: 1, None
        size_hint_y: None
        height: self.minimum_height
        orientation: 'vertical'
        spacing: dp(4)
""")


class CaseRowView(ListRow):
    """One row of the list (reused by the RecycleView for whichever case scrolls into it)."""

    event_id = StringProperty("")
    badges = StringProperty("")
    awaiting = BooleanProperty(False)
    urgent = BooleanProperty(False)

    def on_release(self) -> None:
        """Open the case."""
        from kivy.app import App

        App.get_running_app().go("case", event_id=self.event_id)


class CasesList(RecycleView):
    """The RecycleView of cases."""


def row_data(row: Any) -> dict[str, Any]:
    """A CaseRow as the dict a CaseRowView takes."""
    english = i18n.language() == "en"
    name = (row.category_name_en if english and row.category_name_en else row.category_name) or row.category_code
    badges = []
    state = getattr(row, "sync_state", "synced")
    if state == "refused":
        badges.append(i18n.t("state.refused_short"))
    if row.urgent:
        badges.append(i18n.t("cases.urgent"))
    if row.micro:
        badges.append(i18n.t("cases.micro"))
    if row.failed_verifications:
        badges.append(i18n.t("cases.failed", count=row.failed_verifications))
    status = i18n.t("cases.awaiting") if row.awaiting_me else i18n.status_name(row.status)
    if row.status == "closed" and row.resolution:
        status = f"{status} · {i18n.resolution_name(row.resolution)}"
    return {
        "event_id": row.event_id,
        "title": f"{name}：{row.description}" if not english else f"{name}: {row.description}",
        # Where it stands, on every row: "reported" alone does not say the server has it.
        "subtitle": local_time(row.reported_at) + "   " + (row.case_number or i18n.t("cases.no_number"))
        + "   · " + i18n.state_text(state, getattr(row, "refusal", None)),
        "status_text": status,
        "badges": "  ".join(badges),
        "awaiting": row.awaiting_me,
        "urgent": row.urgent,
    }


# --- the screen -------------------------------------------------------------------------------------

class CasesScreen(BaseScreen):
    """The list of the worker's cases."""

    title_key = "cases.title"

    def build(self) -> None:
        self.summary = Text()
        self.list = CasesList()
        self.body.add_widget(self.summary)
        self.body.add_widget(self.list)
        self.load = ScreenLoad(self, self.body, 1, self._rows, self._show)

    def _rows(self) -> tuple[list[dict[str, Any]], int]:
        """In the worker thread: the rows as the list's dicts (in the current language), and how many await me."""
        rows = CasesPresenter(self.core).rows()
        return [row_data(row) for row in rows], sum(1 for row in rows if row.awaiting_me)

    def refresh(self) -> None:
        super().refresh()
        if not self.load.loaded:
            self.summary.text = ""
        if self.load.shown():
            self.load.start()
        else:
            self.load.cancel()  # read again when shown

    def _show(self, answer: tuple[list[dict[str, Any]], int]) -> None:
        """On the UI thread: the rows arrived."""
        data, awaiting = answer
        self.list.data = data
        self.summary.text = i18n.t("cases.count", count=len(data), awaiting=awaiting) if data else \
            i18n.t("cases.empty")

    def on_leave(self, *args: Any) -> None:
        super().on_leave(*args)
        if not self.load.shown():
            self.load.cancel()
