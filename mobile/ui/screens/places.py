"""Key places (重点单位, 三小场所): which are due for a check, a place, its check, a hazard reported in one tap.

Three thin screens over mobile/places.py's PlacesPresenter; the schedule (never checked, overdue,
due, ok) is shared/checks.py's rule and the check screen is the one rental houses use
(screens/houses.py's CheckScreen), given a place instead of a house. Everything works offline.

* places       the places of the worker's grids, most pressing first; search; "due or overdue only"
* place        details, where it stands on its schedule, open hazards (each "report as event"), checks
* place_check  the check of the place's type's checklist: pass / fail / n.a. and a note; photos
"""

from __future__ import annotations

from typing import Any

from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, ColorProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.recycleview import RecycleView

from ... import i18n
from ...places import PlacesPresenter
from ...presenters import InputError
from ..format import local_time
from ..widgets import DANGER, MUTED, OK, WARN, Card, Field, FlatButton, ListRow, Text, Title, Toggle, scrolling_column
from .base import BaseScreen
from .houses import CheckScreen

__all__ = ["PlacesScreen", "PlaceScreen", "PlaceCheckScreen", "status_tint", "status_text"]

Builder.load_string("""
<PlaceRowView>:
    fill: (0.88, 0.92, 0.97, 1) if self.state == 'down' else (1, 1, 1, 1)
    stripe: root.tint if root.pressing else (0, 0, 0, 0)
    Label:
        size_hint_x: None
        width: dp(330)
        text: root.status_text
        color: root.tint
        font_size: '20sp'
        text_size: self.size
        halign: 'right'
        valign: 'middle'

<PlacesList>:
    viewclass: 'PlaceRowView'
    bar_width: dp(10)
    scroll_type: ['bars', 'content']
    RecycleBoxLayout:
        default_size: None, dp(96)
        default_size_hint: 1, None
        size_hint_y: None
        height: self.minimum_height
        orientation: 'vertical'
        spacing: dp(4)
""")

TINTS = {"never": DANGER, "overdue": DANGER, "due": WARN, "ok": OK, "unscheduled": MUTED}


def status_tint(status: str):
    """The colour of a schedule status: red when overdue or never checked, amber when due."""
    return TINTS.get(status, MUTED)


def status_text(status: str, due_ms: int | None) -> str:
    """A schedule status in words, with the due day when there is one."""
    text = i18n.t(f"places.status.{status}")
    return text + ("  " + i18n.t("places.due", when=local_time(due_ms)[:10]) if due_ms is not None else "")


def type_text(name: str, name_en: str | None, grade: str | None) -> str:
    """A place's type (in the app's language) and grade: "小商店 · A级"."""
    shown = name_en if i18n.language() == "en" and name_en else name
    return shown + (" · " + i18n.t("places.grade", grade=grade) if grade else "")


class PlaceRowView(ListRow):
    """One place in the list (reused by the RecycleView as the list scrolls)."""

    place_id = StringProperty("")
    tint = ColorProperty(MUTED)
    pressing = BooleanProperty(False)

    def on_release(self) -> None:
        from kivy.app import App

        App.get_running_app().go("place", place_id=self.place_id)


class PlacesList(RecycleView):
    """The RecycleView of places."""


def place_row_data(row: Any) -> dict[str, Any]:
    """A PlaceRow as the dict a PlaceRowView takes."""
    words = [type_text(row.type_name, row.type_name_en, row.grade),
             i18n.t("places.last_check", when=local_time(row.last_check_at))]
    if row.open_hazards:
        words.append(i18n.t("houses.hazards", count=row.open_hazards))
    if row.mine:
        words.append(i18n.t("places.mine"))
    return {
        "place_id": row.id,
        "title": row.name + (f"  {row.address}" if row.address else ""),
        "subtitle": "   ".join(words) + "   · " + i18n.state_text(row.sync_state, row.refusal),
        "status_text": status_text(row.status, row.due_ms),
        "tint": status_tint(row.status),
        "pressing": row.needs_check,
    }


class PlacesScreen(BaseScreen):
    """The key places of the worker's grids, most pressing first."""

    title_key = "places.title"

    def build(self) -> None:
        bar = BoxLayout(size_hint_y=None, height=dp(64), spacing=dp(12))
        self.search = Field(multiline=False)
        self.search.bind(text=lambda *_: self.refresh_list())
        self.due_only = Toggle(size_hint_x=0.3)
        self.due_only.bind(state=lambda *_: self.refresh_list())
        self.summary = Text(size_hint_x=0.3)
        for widget in (self.search, self.due_only, self.summary):
            bar.add_widget(widget)
        self.list = PlacesList()
        self.body.add_widget(bar)
        self.body.add_widget(self.list)

    def prepare(self, due_only: bool | None = None, **params: Any) -> None:
        if due_only is not None:
            self.due_only.state = "down" if due_only else "normal"

    def refresh(self) -> None:
        super().refresh()
        self.search.hint_text = i18n.t("places.search")
        self.due_only.text = i18n.t("places.due_only")
        self.refresh_list()

    def refresh_list(self) -> None:
        rows = PlacesPresenter(self.core).places(self.search.text, needs_check=self.due_only.state == "down")
        self.list.data = [place_row_data(row) for row in rows]
        pressing = sum(1 for row in rows if row.needs_check)
        self.summary.text = i18n.t("places.count", count=len(rows), due=pressing) if rows else i18n.t("places.empty")


class PlaceScreen(BaseScreen):
    """One place: details, schedule, open hazards and checks."""

    title_key = "place.title"
    back_to = "places"

    def build(self) -> None:
        self.place_id: str | None = None
        row = BoxLayout(spacing=dp(24))
        self.details = scrolling_column(row, 0.5)
        column = BoxLayout(orientation="vertical", spacing=dp(12), size_hint_x=0.5)
        self.check_button = FlatButton(height=dp(80), font_size=sp(24), size_hint_y=None)
        self.check_button.bind(on_release=lambda *_: self.app.go("place_check", place_id=self.place_id))
        column.add_widget(self.check_button)
        self.hazards = scrolling_column(column, spacing=dp(8), padding=(0, 0, 0, 0))
        row.add_widget(column)
        self.body.add_widget(row)

    def prepare(self, place_id: str | None = None, **params: Any) -> None:
        if place_id:
            self.place_id = place_id
            self.say("")

    def refresh(self) -> None:
        super().refresh()
        self.check_button.text = i18n.t("place.new_check")
        self.details.clear_widgets()
        self.hazards.clear_widgets()
        if not self.place_id:
            return
        try:
            view = PlacesPresenter(self.core).place(self.place_id)
        except InputError:
            return
        values = view.values
        add = self.details.add_widget
        add(Title(text=values.get("name", "")))
        add(Text(text=type_text(view.type_name, view.type_name_en, values.get("grade")), bold=True))
        facts = [values.get("address") or "",
                 i18n.t("place.person", name=values.get("person_in_charge") or i18n.t("common.none"),
                        phone=values.get("phone") or "")]
        for fact in facts:
            if fact:
                add(Text(text=fact, tint=MUTED))
        add(Text(text=i18n.state_text(view.sync_state, view.refusal),
                 tint={"refused": DANGER, "local": WARN}.get(view.sync_state, OK)))
        schedule = view.schedule
        add(Text(text=status_text(schedule.status, schedule.due_ms)
                 + ("  " + i18n.t("place.every", days=schedule.every_days) if schedule.every_days else ""),
                 bold=True, tint=status_tint(schedule.status)))
        add(Title(text=i18n.t("house.checks")))
        if not view.checks:
            add(Text(text=i18n.t("house.no_checks"), tint=MUTED))
        for check in view.checks[:10]:
            failed = i18n.t("house.check_failed", count=len(check.failed)) if check.failed else i18n.t("house.check_ok")
            add(Text(text=f"{local_time(check.checked_at)}  {failed}"
                          + ("" if check.sync_state == "synced" else "  · " + i18n.state_text(check.sync_state,
                                                                                               check.refusal)),
                     tint=DANGER if check.failed else MUTED))

        english = i18n.language() == "en"
        self.hazards.add_widget(Title(text=i18n.t("house.hazards")))
        if not view.hazards:
            self.hazards.add_widget(Text(text=i18n.t("house.no_hazards"), tint=OK))
        for hazard in view.hazards:
            card = Card(padding=dp(14), spacing=dp(6))
            card.add_widget(Text(text=hazard.text_en if english and hazard.text_en else hazard.text, bold=True,
                                 tint=DANGER))
            if hazard.note:
                card.add_widget(Text(text=hazard.note))
            report = FlatButton(text=i18n.t("house.report_hazard"), filled=False, tint=DANGER, font_size=sp(20))
            report.bind(on_release=lambda *_, h=hazard: self.report_hazard(h.check_id, h.item))
            card.add_widget(report)
            self.hazards.add_widget(card)

    def report_hazard(self, check_id: str, item: str) -> None:
        """One tap: the report form, filled from the failed item (category, photos, the place's grid and spot)."""
        try:
            draft = PlacesPresenter(self.core).event_draft(check_id, item)
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.app.go("report", draft=draft)


class PlaceCheckScreen(CheckScreen):
    """A new check of one key place against its type's checklist (the house check screen, given a place)."""

    title_key = "place_check.title"
    back_to = "place"
    subject_param = "place_id"
    presenter_class = PlacesPresenter


class HomePlacesCard(Card):
    """Home's section of key places: how many are due or overdue in the worker's grids, and the way to them."""

    def __init__(self, app: Any, **kwargs: Any):
        super().__init__(padding=dp(16), spacing=dp(8), size_hint_y=None, height=dp(160), **kwargs)
        self.app = app
        self.line = Text()
        self.button = FlatButton(height=dp(64), font_size=sp(22), size_hint_y=None)
        self.button.bind(on_release=lambda *_: app.go("places", due_only=True))
        self.add_widget(self.line)
        self.add_widget(self.button)

    def refresh(self) -> None:
        """Count again (a few dozen places: read on the UI thread, like the house list)."""
        self.button.text = i18n.t("home.places")
        if self.app.core.user is None:
            self.line.text = ""
            return
        rows = PlacesPresenter(self.app.core).places(needs_check=True)
        overdue = sum(1 for row in rows if row.status in ("never", "overdue"))
        self.line.text = i18n.t("home.places_due", due=len(rows), overdue=overdue) if rows \
            else i18n.t("home.places_none_due")
        self.line.tint = DANGER if overdue else WARN if rows else OK
