"""Civil disputes (矛盾纠纷): the disputes of the worker's grids, one dispute with its steps, and reporting one.

Three thin screens over mobile/disputes.py's DisputesPresenter, which holds every rule (the fold,
the steps that apply, overdue, what a report needs). Like every capture, a report or a step is one
local write: it works offline and syncs later.

* disputes        overdue ones first (red stripe), the parties masked; "report a dispute" in the header
* dispute         the parties in full (to mediate), status, take-up deadline, the timeline; a button per
                  step that applies now, with a note, the mediators, and the outcome's choices
* dispute_report  grid, kind, up to three parties (name, phone, role), place, what it is about
"""

from __future__ import annotations

from typing import Any

from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.recycleview import RecycleView

from shared.records import DISPUTE_OUTCOMES

from ... import i18n
from ...disputes import DisputesPresenter
from ...presenters import InputError
from ..format import local_time
from ..widgets import DANGER, MUTED, OK, WARN, Field, FlatButton, ListRow, Text, Title, Toggle, scrolling_column
from .base import BaseScreen

__all__ = ["DisputesScreen", "DisputeScreen", "DisputeReportScreen"]

Builder.load_string("""
<DisputeRowView>:
    fill: (0.88, 0.92, 0.97, 1) if self.state == 'down' else (1, 1, 1, 1)
    stripe: (0.78, 0.16, 0.16, 1) if self.overdue else (0, 0, 0, 0)
    Label:
        size_hint_x: None
        width: dp(300)
        text: root.status_text
        color: (0.78, 0.16, 0.16, 1) if root.overdue else (0.08, 0.4, 0.75, 1)
        font_size: '20sp'
        bold: root.overdue
        text_size: self.size
        halign: 'right'
        valign: 'middle'

<DisputesList>:
    viewclass: 'DisputeRowView'
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

INK = (0.12, 0.16, 0.2, 1)


def status_text(status: str, outcome: str | None) -> str:
    """A dispute's status in words, with its outcome once concluded."""
    text = i18n.t(f"dispute_status.{status}")
    return f"{text} · {i18n.t(f'dispute_outcome.{outcome}')}" if outcome else text


def kind_name(name: str, name_en: str | None) -> str:
    """A dispute kind's name in the app's language."""
    return name_en if i18n.language() == "en" and name_en else name


def parties_text(parties: list[dict[str, Any]]) -> str:
    """Parties as one line: names, and phones where held."""
    sep = "、" if i18n.language() == "zh" else ", "
    return sep.join(p.get("name") or "" for p in parties)


class DisputeRowView(ListRow):
    """One dispute of the list (reused by the RecycleView as the list scrolls)."""

    dispute_id = StringProperty("")
    overdue = BooleanProperty(False)

    def on_release(self) -> None:
        from kivy.app import App

        App.get_running_app().go("dispute", dispute_id=self.dispute_id)


class DisputesList(RecycleView):
    """The RecycleView of disputes."""


def dispute_row_data(row: Any) -> dict[str, Any]:
    """A DisputeRow as the dict a DisputeRowView takes."""
    status = status_text(row.status, row.outcome)
    if row.overdue:  # overdue is "not taken up in time": the status says no more
        status = i18n.t("disputes.overdue")
    elif row.status == "reported" and row.deadline:
        status += "\n" + i18n.t("disputes.deadline", when=local_time(row.deadline))
    return {
        "dispute_id": row.id,
        "title": row.description,
        "subtitle": i18n.t("disputes.row", kind=kind_name(row.kind_name, row.kind_name_en),
                           when=local_time(row.reported_at), parties=parties_text(row.parties))
        + "   · " + i18n.state_text(row.sync_state, row.refusal),
        "status_text": status,
        "overdue": row.overdue,
    }


class DisputesScreen(BaseScreen):
    """The disputes of the worker's grids."""

    title_key = "disputes.title"

    def build(self) -> None:
        self.report_button = FlatButton(size_hint=(None, None), width=dp(220), height=dp(60), filled=False,
                                        tint=(1, 1, 1, 1))
        self.report_button.bind(on_release=lambda *_: self.app.go("dispute_report", fresh=True))
        self.header.add_widget(self.report_button)
        self.summary = Text()
        self.list = DisputesList()
        self.body.add_widget(self.summary)
        self.body.add_widget(self.list)

    def refresh(self) -> None:
        super().refresh()
        self.report_button.text = i18n.t("disputes.report")
        rows = DisputesPresenter(self.core).rows()
        self.list.data = [dispute_row_data(row) for row in rows]
        overdue = sum(1 for row in rows if row.overdue)
        self.summary.text = i18n.t("disputes.count", count=len(rows), overdue=overdue) if rows \
            else i18n.t("disputes.empty")
        self.summary.tint = DANGER if overdue else INK


class DisputeScreen(BaseScreen):
    """One dispute: the parties, the state, the timeline, and the steps that apply now."""

    title_key = "dispute.title"
    back_to = "disputes"

    def build(self) -> None:
        self.dispute_id: str | None = None
        self.outcome: str | None = None
        row = BoxLayout(spacing=dp(24))
        self.details = scrolling_column(row, 0.56)
        self.steps_card = scrolling_column(row, 0.44, spacing=dp(10))
        self.note = Field(multiline=True, size_hint_y=None, height=dp(110))
        self.mediators = Field(multiline=False, size_hint_y=None, height=dp(56))
        self.referred_to = Field(multiline=False, size_hint_y=None, height=dp(56))
        self.body.add_widget(row)

    def prepare(self, dispute_id: str | None = None, **params: Any) -> None:
        """Which dispute to show; another dispute starts with an empty form."""
        if dispute_id and dispute_id != self.dispute_id:
            self.dispute_id = dispute_id
            self.note.text = self.mediators.text = self.referred_to.text = ""
            self.outcome = None
            self.say("")

    def refresh(self) -> None:
        super().refresh()
        if not self.dispute_id:
            return
        try:
            view = DisputesPresenter(self.core).view(self.dispute_id)
        except InputError:
            self.details.clear_widgets()
            self.steps_card.clear_widgets()
            return
        state = view.state
        add = self.details.add_widget
        self.details.clear_widgets()
        add(Title(text=kind_name(view.kind_name, view.kind_name_en)))
        add(Text(text=view.description, font_size=sp(22)))
        add(Text(text=i18n.t("disputes.overdue") if state.overdue else status_text(state.status, state.outcome),
                 bold=True, tint=DANGER if state.overdue else (OK if state.status == "concluded" else (0.08, 0.4, 0.75, 1))))
        add(Title(text=i18n.t("dispute.parties")))
        for party in view.parties:
            words = [party.get("name") or ""]
            if party.get("role"):
                words.append(party["role"])
            if party.get("phone"):
                words.append(party["phone"])
            add(Text(text="  ·  ".join(words), font_size=sp(22)))
        if not view.parties_full:
            add(Text(text=i18n.t("dispute.parties_masked"), tint=MUTED))
        if view.place:
            add(Text(text=i18n.t("dispute.place", place=view.place), tint=MUTED))
        add(Text(text=i18n.t("dispute.reported_at", when=local_time(view.reported_at)), tint=MUTED))
        if state.deadline:
            add(Text(text=i18n.t("dispute.deadline", when=local_time(state.deadline)),
                     tint=DANGER if state.overdue else MUTED))
        add(Text(text=i18n.t("dispute.taken_up", when=local_time(state.taken_up_at))
                 + (i18n.t("dispute.late") if state.late else "") if state.taken_up_at
                 else i18n.t("dispute.not_taken_up"), tint=WARN if state.late else MUTED))
        if state.referred_to:
            add(Text(text=i18n.t("dispute.referred_to", body=state.referred_to), tint=MUTED))
        add(Text(text=i18n.state_text(view.sync_state, view.refusal),
                 tint={"refused": DANGER, "local": WARN}.get(view.sync_state, OK)))
        add(Title(text=i18n.t("dispute.timeline")))
        if not view.steps:
            add(Text(text=i18n.t("dispute.no_steps"), tint=MUTED))
        for step in view.steps:
            known = f"dispute_step.{step.action}" in i18n.CATALOG[i18n.language()]
            line = f"{local_time(step.at)}  " + (i18n.t(f"dispute_step.{step.action}") if known else step.action)
            if step.outcome:
                line += " · " + i18n.t(f"dispute_outcome.{step.outcome}")
            if step.mediators:
                line += "\n" + i18n.t("dispute.mediators", names="、".join(step.mediators))
            if step.note:
                line += "\n" + step.note
            if not step.applied:
                line += "\n" + (step.reason or "")
            if not step.synced:
                line += "   · " + i18n.state_text("local")
            add(Text(text=line, tint=INK if step.applied else MUTED))
        self._show_steps(view.offered)

    def _show_steps(self, offered: tuple[str, ...]) -> None:
        column = self.steps_card
        column.clear_widgets()
        for field_input in (self.note, self.mediators, self.referred_to):
            if field_input.parent is not None:
                field_input.parent.remove_widget(field_input)
        column.add_widget(Title(text=i18n.t("dispute.steps")))
        self.note.hint_text = i18n.t("dispute.note_hint")
        column.add_widget(self.note)
        if "session" in offered:
            self.mediators.hint_text = i18n.t("dispute.mediators_hint")
            column.add_widget(self.mediators)
        if "outcome" in offered:
            choices = GridLayout(cols=2, spacing=dp(8), size_hint_y=None, height=dp(136))
            self.outcome_toggles = {}
            for code in DISPUTE_OUTCOMES:
                toggle = Toggle(text=i18n.t(f"dispute_outcome.{code}"), group="dispute-outcome", font_size=sp(20),
                                state="down" if self.outcome == code else "normal")
                toggle.bind(on_release=lambda b, c=code: self._choose(c, b.state))
                self.outcome_toggles[code] = toggle
                choices.add_widget(toggle)
            column.add_widget(choices)
            self.referred_to.hint_text = i18n.t("dispute.referred_hint")
            column.add_widget(self.referred_to)
        self.step_buttons = {}
        for action in offered:
            tint = OK if action in ("accept", "outcome") else (0.08, 0.4, 0.75, 1)
            button = FlatButton(text=i18n.t(f"dispute_step.{action}"), height=dp(72), font_size=sp(24),
                                tint=tint, tint_down=tint, filled=action != "comment", size_hint_y=None)
            button.bind(on_release=lambda *_, a=action: self.take(a))
            self.step_buttons[action] = button
            column.add_widget(button)
        if "accept" not in offered and "session" not in offered:
            column.add_widget(Text(text=i18n.t("dispute.no_more_steps"), tint=MUTED))

    def _choose(self, code: str, state: str) -> None:
        self.outcome = code if state == "down" else None

    def take(self, action: str) -> None:
        """Record one step (one local write), then show the dispute again."""
        names = [n for n in self.mediators.text.replace("，", ",").replace("、", ",").split(",")]
        try:
            DisputesPresenter(self.core).step(self.dispute_id, action, note=self.note.text, mediators=names,
                                              outcome=self.outcome, referred_to=self.referred_to.text)
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.note.text = self.mediators.text = self.referred_to.text = ""
        self.outcome = None
        self.refresh()
        self.say(i18n.t("dispute.saved", step=i18n.t(f"dispute_step.{action}")), "ok")


class DisputeReportScreen(BaseScreen):
    """Report a dispute in one of the worker's grids."""

    title_key = "dispute_report.title"
    back_to = "disputes"
    PARTIES = 3

    def build(self) -> None:
        self.grid: str | None = None
        self.kind: str | None = None
        row = BoxLayout(spacing=dp(24))
        self.form = scrolling_column(row, 0.64)
        side = BoxLayout(orientation="vertical", spacing=dp(12), size_hint_x=0.36)
        self.privacy = Text(tint=MUTED)
        self.save_button = FlatButton(tint=OK, tint_down=OK, height=dp(80), font_size=sp(28), size_hint_y=None)
        self.save_button.bind(on_release=lambda *_: self.save())
        side.add_widget(self.save_button)
        side.add_widget(self.privacy)
        side.add_widget(BoxLayout())
        row.add_widget(side)
        self.body.add_widget(row)
        self.party_inputs = [{name: Field(multiline=False, size_hint_y=None, height=dp(56))
                              for name in ("name", "phone", "role")} for _ in range(self.PARTIES)]
        for inputs in self.party_inputs:
            inputs["phone"].input_filter = lambda text, undo: "".join(c for c in text if c in "0123456789+- ")
        self.place = Field(multiline=False, size_hint_y=None, height=dp(56))
        self.description = Field(multiline=True, size_hint_y=None, height=dp(130))

    def prepare(self, fresh: bool = False, **params: Any) -> None:
        """A new, empty report."""
        if fresh:
            self.grid = self.kind = None
            for inputs in self.party_inputs:
                for field_input in inputs.values():
                    field_input.text = ""
            self.place.text = self.description.text = ""
            self.say("")

    def refresh(self) -> None:
        super().refresh()
        self.save_button.text = i18n.t("dispute_report.save")
        self.privacy.text = i18n.t("dispute_report.privacy")
        presenter = DisputesPresenter(self.core)
        grids = self.core.grids()
        if self.grid is None and grids:
            self.grid = grids[0].code
        form = self.form
        form.clear_widgets()
        if len(grids) > 1:
            form.add_widget(Title(text=i18n.t("dispute_report.grid")))
            form.add_widget(self._toggles([(g.code, g.name or g.code) for g in grids], "dispute-grid", self.grid,
                                          self._set_grid))
        form.add_widget(Title(text=i18n.t("dispute_report.kind")))
        kinds = presenter.kinds()
        if not kinds:
            form.add_widget(Text(text=i18n.t("dispute_report.no_kinds"), tint=DANGER))
        else:
            form.add_widget(self._toggles([(k.code, kind_name(k.name, k.name_en)) for k in kinds], "dispute-kind",
                                          self.kind, self._set_kind))
        for n, inputs in enumerate(self.party_inputs, 1):
            form.add_widget(Title(text=i18n.t("dispute_report.party", n=n)))
            line = GridLayout(cols=3, spacing=dp(8), size_hint_y=None, height=dp(56))
            for name, field_input in inputs.items():
                if field_input.parent is not None:
                    field_input.parent.remove_widget(field_input)
                field_input.hint_text = i18n.t(f"dispute_report.{name}")
                line.add_widget(field_input)
            form.add_widget(line)
        for title, field_input in (("dispute_report.place", self.place),
                                   ("dispute_report.description", self.description)):
            if field_input.parent is not None:
                field_input.parent.remove_widget(field_input)
            form.add_widget(Title(text=i18n.t(title)))
            form.add_widget(field_input)

    def _toggles(self, choices, group: str, chosen: str | None, on_choose) -> GridLayout:
        grid = GridLayout(cols=3, spacing=dp(8), size_hint_y=None, row_default_height=dp(60), row_force_default=True)
        grid.bind(minimum_height=grid.setter("height"))
        for code, label in choices:
            toggle = Toggle(text=label, group=group, font_size=sp(20), state="down" if chosen == code else "normal",
                            allow_no_selection=False)
            toggle.code = code
            toggle.bind(on_release=lambda b, c=code: on_choose(c))
            grid.add_widget(toggle)
        if group == "dispute-kind":
            self.kind_toggles = grid
        return grid

    def _set_grid(self, code: str) -> None:
        self.grid = code

    def _set_kind(self, code: str) -> None:
        self.kind = code

    def save(self) -> None:
        """One local write; then the new dispute's screen."""
        parties = [{name: field_input.text for name, field_input in inputs.items()} for inputs in self.party_inputs]
        try:
            dispute_id = DisputesPresenter(self.core).report(
                grid=self.grid or "", kind=self.kind or "", parties=parties, description=self.description.text,
                place=self.place.text)
        except InputError as exc:
            field = exc.field.split(".")[0]
            self.say(i18n.error_text(field, exc.code), "error")
            return
        self.app.go("dispute", dispute_id=dispute_id)
        self.app.screen("dispute").say(i18n.t("dispute_report.saved"), "ok")
