"""Rental houses (出租屋): find a house, check it, turn a failed item into an event, register tenants.

Four thin screens over mobile/houses.py's HousesPresenter, which holds every
rule (current checklist, notes on failed items, the ID-number check,
registration rate). Like every capture, a check or a tenant is one local
write: it works offline and syncs later. The registration rate shown is the
supervisor pages' figure (shared/houses.py): current tenants, counted at
most up to the residents seen at the latest check, over those residents seen;
a dash when that check counted nobody or there is none.

* houses       search by address or owner; last check, open hazards, registration rate
* house        details, open hazards (each "report as event" in one tap), tenants (move out), check history
* house_check  one row per item of the current checklist: pass / fail / n.a. and a note; residents seen; photos
               (CheckScreen: the check screen of every checked place, key places' too: screens/places.py)
* tenant       name, ID number (checked at once, masked on every list), phone, room, moved in
"""

from __future__ import annotations

from datetime import date
from typing import Any

from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.recycleview import RecycleView

from shared.houses import below_goal

from ... import i18n
from ...houses import HousesPresenter
from ...presenters import InputError, ReportPresenter
from ..format import local_time
from ..pickers import PhotoTaker
from ..widgets import DANGER, MUTED, OK, WARN, Card, Field, FlatButton, ListRow, Text, Title, Toggle, scrolling_column
from .base import BaseScreen
from .report import PhotoStrip

__all__ = ["HousesScreen", "HouseScreen", "CheckScreen", "HouseCheckScreen", "TenantScreen"]

Builder.load_string("""
<HouseRowView>:
    fill: (0.88, 0.92, 0.97, 1) if self.state == 'down' else (1, 1, 1, 1)
    stripe: (0.78, 0.16, 0.16, 1) if self.hazards else (0, 0, 0, 0)
    Label:
        size_hint_x: None
        width: dp(330)
        text: root.status_text
        color: (0.78, 0.16, 0.16, 1) if root.hazards else (0.08, 0.4, 0.75, 1)
        font_size: '20sp'
        text_size: self.size
        halign: 'right'
        valign: 'middle'

<HousesList>:
    viewclass: 'HouseRowView'
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


def percent(rate: float | None) -> str:
    """A registration rate as "87%" (never above 100%: the rate is capped), or a dash when the house is not counted."""
    return "—" if rate is None else f"{rate * 100:.0f}%"


class HouseRowView(ListRow):
    """One house in the list (reused by the RecycleView as the list scrolls)."""

    house_id = StringProperty("")
    hazards = BooleanProperty(False)

    def on_release(self) -> None:
        from kivy.app import App

        App.get_running_app().go("house", house_id=self.house_id)


class HousesList(RecycleView):
    """The RecycleView of houses."""


def house_row_data(row: Any) -> dict[str, Any]:
    """A HouseRow as the dict a HouseRowView takes."""
    owner = row.owner or i18n.t("common.none")
    status = [i18n.t("houses.hazards", count=row.open_hazards) if row.open_hazards else i18n.t("houses.no_hazards"),
              i18n.t("houses.rate", rate=percent(row.rate))]
    return {
        "house_id": row.id,
        "title": row.address,
        "subtitle": i18n.t("houses.row", owner=owner, checked=local_time(row.last_check_at),
                           tenants=row.tenants) + "   · " + i18n.state_text(row.sync_state, row.refusal),
        "status_text": "  ·  ".join(status),
        "hazards": bool(row.open_hazards),
    }


class HousesScreen(BaseScreen):
    """The houses in the worker's grids, searchable."""

    title_key = "houses.title"

    def build(self) -> None:
        search = BoxLayout(size_hint_y=None, height=dp(64), spacing=dp(12))
        self.search = Field(multiline=False)
        self.search.bind(text=lambda *_: self.refresh_list())
        self.summary = Text(size_hint_x=0.4)
        search.add_widget(self.search)
        search.add_widget(self.summary)
        self.list = HousesList()
        self.body.add_widget(search)
        self.body.add_widget(self.list)

    def refresh(self) -> None:
        super().refresh()
        self.search.hint_text = i18n.t("houses.search")
        self.refresh_list()

    def refresh_list(self) -> None:
        rows = HousesPresenter(self.core).houses(self.search.text)
        self.list.data = [house_row_data(row) for row in rows]
        self.summary.text = i18n.t("houses.count", count=len(rows)) if rows else i18n.t("houses.empty")


class HouseScreen(BaseScreen):
    """One house: details, open hazards, tenants and checks."""

    title_key = "house.title"
    back_to = "houses"

    def build(self) -> None:
        self.house_id: str | None = None
        row = BoxLayout(spacing=dp(24))
        self.details = scrolling_column(row, 0.55)

        column = BoxLayout(orientation="vertical", spacing=dp(12), size_hint_x=0.45)
        actions = GridLayout(cols=2, spacing=dp(12), size_hint_y=None, height=dp(80))
        self.check_button = FlatButton(height=dp(80), font_size=sp(24))
        self.tenant_button = FlatButton(height=dp(80), font_size=sp(24), tint=OK, tint_down=OK)
        self.check_button.bind(on_release=lambda *_: self.app.go("house_check", house_id=self.house_id))
        self.tenant_button.bind(on_release=lambda *_: self.app.go("tenant", house_id=self.house_id))
        actions.add_widget(self.check_button)
        actions.add_widget(self.tenant_button)
        column.add_widget(actions)
        self.tenants = scrolling_column(column, spacing=dp(8), padding=(0, 0, 0, 0))
        row.add_widget(column)
        self.body.add_widget(row)

    def prepare(self, house_id: str | None = None, **params: Any) -> None:
        if house_id:
            self.house_id = house_id
            self.say("")

    def refresh(self) -> None:
        super().refresh()
        self.check_button.text = i18n.t("house.new_check")
        self.tenant_button.text = i18n.t("house.new_tenant")
        if not self.house_id:
            return
        try:
            view = HousesPresenter(self.core).house(self.house_id)
        except InputError:
            self.details.clear_widgets()
            self.tenants.clear_widgets()
            return
        english = i18n.language() == "en"
        values = view.values
        add = self.details.add_widget
        self.details.clear_widgets()
        add(Title(text=values.get("address", "")))
        facts = [i18n.t("house.owner", owner=values.get("owner") or i18n.t("common.none"),
                        phone=values.get("owner_phone") or "")]
        if values.get("building_head"):
            facts.append(i18n.t("house.building_head", name=values["building_head"]))
        if values.get("floors") is not None or values.get("rooms") is not None:
            facts.append(i18n.t("house.size", floors=values.get("floors") or "—", rooms=values.get("rooms") or "—"))
        if values.get("risk_grade"):
            facts.append(i18n.t("house.risk", grade=i18n.t(f"risk.{values['risk_grade']}")))
        for fact in facts:
            add(Text(text=fact, tint=MUTED))
        add(Text(text=i18n.state_text(view.sync_state, view.refusal),
                 tint={"refused": DANGER, "local": WARN}.get(view.sync_state, OK)))
        current = sum(1 for tenant in view.tenants if tenant.current)
        seen = view.checks[0].residents_seen if view.checks else None
        add(Text(text=i18n.t("house.registration", rate=percent(view.rate), tenants=current,
                             seen="—" if seen is None else seen),
                 bold=True, tint=WARN if view.rate is None or below_goal(view.rate) else OK))
        add(Title(text=i18n.t("house.hazards")))
        if not view.hazards:
            add(Text(text=i18n.t("house.no_hazards"), tint=OK))
        for hazard in view.hazards:
            card = Card(padding=dp(14), spacing=dp(6))
            text = hazard.text_en if english and hazard.text_en else hazard.text
            card.add_widget(Text(text=text, bold=True, tint=DANGER))
            if hazard.note:
                card.add_widget(Text(text=hazard.note))
            report = FlatButton(text=i18n.t("house.report_hazard"), filled=False, tint=DANGER, font_size=sp(20))
            report.bind(on_release=lambda *_, h=hazard: self.report_hazard(h.check_id, h.item))
            card.add_widget(report)
            add(card)
        add(Title(text=i18n.t("house.checks")))
        if not view.checks:
            add(Text(text=i18n.t("house.no_checks"), tint=MUTED))
        for check in view.checks[:10]:
            failed = i18n.t("house.check_failed", count=len(check.failed)) if check.failed else i18n.t("house.check_ok")
            add(Text(text=f"{local_time(check.checked_at)}  {failed}"
                          + ("" if check.sync_state == "synced" else "  · " + i18n.state_text(check.sync_state,
                                                                                               check.refusal)),
                     tint=DANGER if check.failed else MUTED))

        self.tenants.clear_widgets()
        self.tenants.add_widget(Title(text=i18n.t("house.tenants", count=current)))
        for tenant in view.tenants:
            line = BoxLayout(size_hint_y=None, height=dp(72), spacing=dp(8))
            words = [tenant.name]
            if tenant.room:
                words.append(i18n.t("house.room", room=tenant.room))
            if tenant.id_number_shown:
                words.append(tenant.id_number_shown)
            if not tenant.current:
                words.append(i18n.t("house.moved_out", day=tenant.moved_out))
            words.append("· " + i18n.state_text(tenant.sync_state, tenant.refusal))
            tint = DANGER if tenant.sync_state == "refused" else (0.12, 0.16, 0.2, 1) if tenant.current else MUTED
            line.add_widget(Text(text="  ".join(words), tint=tint))
            if tenant.current:
                out = FlatButton(text=i18n.t("house.move_out"), filled=False, size_hint_x=None, width=dp(130),
                                 font_size=sp(18))
                out.bind(on_release=lambda *_, tid=tenant.id, name=tenant.name: self.ask_move_out(tid, name))
                line.add_widget(out)
            elif tenant.undoable:  # moved out here a moment ago: one tap takes it back
                back = FlatButton(text=i18n.t("house.undo_move_out"), filled=False, size_hint_x=None, width=dp(150),
                                  font_size=sp(18))
                back.bind(on_release=lambda *_, tid=tenant.id: self.undo_move_out(tid))
                line.add_widget(back)
            self.tenants.add_widget(line)

    def report_hazard(self, check_id: str, item: str) -> None:
        """One tap: the report form, filled from the failed item (category, photos, the house's place)."""
        try:
            draft = HousesPresenter(self.core).event_draft(check_id, item)
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.app.go("report", draft=draft)

    def ask_move_out(self, tenant_id: str, name: str) -> None:
        """搬离 asks first: one tap on the wrong row must not move a tenant out."""
        from ..pickers import ask_confirm

        self.confirm_popup = ask_confirm(i18n.t("house.move_out_confirm", name=name), i18n.t("house.move_out"),
                                         lambda: self.move_out(tenant_id))

    def move_out(self, tenant_id: str) -> None:
        try:
            HousesPresenter(self.core).move_out(tenant_id)  # today, the day the rate counts by
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.say(i18n.t("house.moved_out_saved"), "ok")
        self.refresh()

    def undo_move_out(self, tenant_id: str) -> None:
        """Take a move-out back (made on this tablet minutes ago): the tenant counts as living there again."""
        try:
            HousesPresenter(self.core).undo_move_out(tenant_id)
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.say(i18n.t("house.move_out_undone"), "ok")
        self.refresh()


RESULT_KEYS = (("pass", "check.pass", OK), ("fail", "check.fail", DANGER), ("na", "check.na", MUTED))


class CheckScreen(BaseScreen):
    """A new check of one checked place (a house, a key place) against its current checklist.

    One screen for every checked kind: a subclass names its presenter (``checklist_for``,
    ``save_check``), the parameter that carries the place's id and the screen to go back to.
    """

    title_key = "check.title"
    back_to = "house"
    subject_param = "house_id"
    presenter_class: Any = HousesPresenter
    counts_residents = False  # a house check also counts the residents seen

    def build(self) -> None:
        self.subject_id: str | None = None
        self.form: ReportPresenter | None = None
        self.answers: dict[str, str] = {}
        self.notes: dict[str, Field] = {}
        self.photos: list[str] = []
        row = BoxLayout(spacing=dp(24))
        self.items = scrolling_column(row, 0.64)
        side = BoxLayout(orientation="vertical", spacing=dp(12), size_hint_x=0.36)
        self.seen_title = Title()
        self.seen = Field(multiline=False, input_filter="int")
        photos = Card(padding=dp(16), spacing=dp(6))
        self.photos_title = Title()
        self.taker = PhotoTaker(self, lambda: self.form, self._photo_added)
        self.strip = PhotoStrip(self.taker.take, self.remove_photo)
        photos.add_widget(self.photos_title)
        photos.add_widget(self.strip)
        self.save_button = FlatButton(tint=OK, tint_down=OK, height=dp(80), font_size=sp(28))
        self.save_button.bind(on_release=lambda *_: self.save())
        counted = (self.seen_title, self.seen) if self.counts_residents else ()
        for widget in (*counted, photos, self.save_button, BoxLayout()):
            side.add_widget(widget)
        row.add_widget(side)
        self.body.add_widget(row)

    def presenter(self):
        """The presenter of this screen's checked kind."""
        return self.presenter_class(self.core)

    def prepare(self, **params: Any) -> None:
        """A new, empty check of the place."""
        if params.get(self.subject_param):
            self.subject_id = params[self.subject_param]
        self.form = ReportPresenter(self.core)  # one per open form: it remembers the photos it took
        self.answers, self.photos = {}, []
        self.seen.text = ""
        self.notes = {}
        self.say("")

    def checklist(self):
        """The checklist this check answers; None when it has not synced."""
        try:
            return self.presenter().checklist_for(self.subject_id) if self.subject_id else None
        except InputError:
            return None

    def refresh(self) -> None:
        super().refresh()
        self.seen_title.text = i18n.t("check.residents_seen")
        self.seen.hint_text = i18n.t("check.residents_hint")
        self.photos_title.text = i18n.t("report.photos")
        self.save_button.text = i18n.t("check.save")
        checklist = self.checklist()
        self.items.clear_widgets()
        if checklist is None:
            self.items.add_widget(Text(text=i18n.t("check.no_checklist"), tint=DANGER))
            return
        english = i18n.language() == "en"
        self.items.add_widget(Title(text=(checklist.name_en if english and checklist.name_en else checklist.name)
                                    + f"  v{checklist.version}"))
        for item in checklist.items:
            card = Card(padding=dp(12), spacing=dp(6))
            card.add_widget(Text(text=item.text_en if english and item.text_en else item.text, bold=True))
            choices = GridLayout(cols=3, spacing=dp(8), size_hint_y=None, height=dp(64))
            for result, key, tint in RESULT_KEYS:
                toggle = Toggle(text=i18n.t(key), group=f"item-{item.code}", tint=tint,
                                state="down" if self.answers.get(item.code) == result else "normal")
                toggle.bind(on_release=lambda b, code=item.code, r=result: self.answer(code, r, b.state))
                choices.add_widget(toggle)
            card.add_widget(choices)
            note = self.notes.get(item.code) or Field(multiline=False)
            if note.parent is not None:
                note.parent.remove_widget(note)
            note.hint_text = i18n.t("check.note")
            self.notes[item.code] = note
            card.add_widget(note)
            self.items.add_widget(card)
        self._show_photos()

    def answer(self, code: str, result: str, state: str) -> None:
        if state == "down":
            self.answers[code] = result
        else:
            self.answers.pop(code, None)

    def _photo_added(self, sha: str) -> None:
        if sha not in self.photos:
            self.photos.append(sha)
        self._show_photos()

    def remove_photo(self, sha: str) -> None:
        self.form.remove_photo(sha)
        self.photos = [p for p in self.photos if p != sha]
        self._show_photos()

    def _show_photos(self) -> None:
        queue = self.core.photos
        self.strip.show([(sha, str(queue.thumbnail_path(sha))) for sha in self.photos],
                        i18n.t("report.add_photo"), i18n.t("report.remove_photo"))

    def save_check(self, answers: dict[str, tuple[str, str | None]]) -> None:
        """The presenter's write of this kind's check."""
        self.presenter().save_check(self.subject_id, answers, photos=tuple(self.photos))

    def save(self) -> None:
        """One local write; then back to the place, whose hazards now come from this check."""
        answers = {code: (result, self.notes[code].text if code in self.notes else None)
                   for code, result in self.answers.items()}
        try:
            self.save_check(answers)
        except InputError as exc:
            self.say(i18n.error_text(exc.field.split(".")[0], exc.code)
                     + (f"：{self._item_text(exc.field)}" if "." in exc.field else ""), "error")
            return
        self.photos = []
        self.app.go(self.back_to)
        self.app.screen(self.back_to).say(i18n.t("check.saved"), "ok")

    def _item_text(self, field_name: str) -> str:
        checklist = self.checklist()
        code = field_name.split(".", 1)[1]
        for item in checklist.items if checklist else ():
            if item.code == code:
                return item.text_en if i18n.language() == "en" and item.text_en else item.text
        return code


class HouseCheckScreen(CheckScreen):
    """A new check of one rental house: the checklist's items, the residents seen, photos."""

    title_key = "check.title"
    back_to = "house"
    subject_param = "house_id"
    presenter_class = HousesPresenter
    counts_residents = True

    @property
    def house_id(self) -> str | None:
        """The house being checked."""
        return self.subject_id

    def save_check(self, answers: dict[str, tuple[str, str | None]]) -> None:
        seen = int(self.seen.text) if self.seen.text.strip().isdigit() else None
        self.presenter().save_check(self.subject_id, answers, residents_seen=seen, photos=tuple(self.photos))


class TenantScreen(BaseScreen):
    """Register a tenant of one house."""

    title_key = "tenant.title"
    back_to = "house"
    FIELDS = ("name", "id_number", "phone", "room", "moved_in")

    def build(self) -> None:
        self.house_id: str | None = None
        self.confirming = ""
        row = BoxLayout(spacing=dp(24))
        # The form scrolls: five fields, a notice and the button are taller than a tablet held sideways, and a
        # field the on-screen keyboard would cover is scrolled into view (Kivy's softinput_mode, app.py).
        form = scrolling_column(row, 0.6, spacing=dp(10))
        self.labels: dict[str, Text] = {}
        self.inputs: dict[str, Field] = {}
        for name in self.FIELDS:
            self.labels[name] = Text(bold=True)
            self.inputs[name] = Field(multiline=False)
            form.add_widget(self.labels[name])
            form.add_widget(self.inputs[name])
        self.save_button = FlatButton(tint=OK, tint_down=OK, height=dp(80), font_size=sp(28))
        self.save_button.bind(on_release=lambda *_: self.save())
        form.add_widget(self.save_button)
        self.hint = Text(tint=MUTED, size_hint_x=0.4)
        row.add_widget(self.hint)
        self.body.add_widget(row)

    def prepare(self, house_id: str | None = None, **params: Any) -> None:
        if house_id:
            self.house_id = house_id
        for field_input in self.inputs.values():
            field_input.text = ""
        self.inputs["moved_in"].text = date.today().isoformat()
        self.confirming = ""  # the ID number the worker was warned about (registered elsewhere already)
        self.say("")

    def refresh(self) -> None:
        super().refresh()
        for name in self.FIELDS:
            self.labels[name].text = i18n.t(f"tenant.{name}")
        self.inputs["id_number"].hint_text = i18n.t("tenant.id_hint")
        self.hint.text = i18n.t("tenant.privacy")
        self.save_button.text = i18n.t("tenant.save")

    def save(self) -> None:
        values = {name: self.inputs[name].text for name in self.FIELDS}
        # A number already registered here is said first; the same number tapped again saves it anyway.
        confirm = self.confirming == values["id_number"].strip().upper() and bool(self.confirming)
        try:
            HousesPresenter(self.core).register_tenant(self.house_id, **values, confirm_same_number=confirm)
        except InputError as exc:
            if exc.code == "same_number":
                self.confirming = values["id_number"].strip().upper()
                self.save_button.text = i18n.t("tenant.save_anyway")
                self.say(i18n.t("tenant.same_number", where=exc.detail or ""), "error")
                return
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.confirming = ""
        self.app.go("house")
        self.app.screen("house").say(i18n.t("tenant.saved"), "ok")

