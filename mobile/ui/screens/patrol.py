"""Patrol (巡查): start and stop a patrol, its live figures, the fixed points with check-in, the plan; Home's card.

Thin glue over `mobile.patrol.PatrolPresenter`. The one thing it adds is the beat: a Kivy Clock event
calls `PatrolPresenter.tick` once a second for the life of the app, whichever screen is shown (the
recorder keeps or leaves out the fix; everything it keeps is already committed when tick returns). The
screen redraws the live figures on each beat while it is shown; Home's card when a point is kept.

At start-up (when the screens are built) the presenter's `recover` resumes an open patrol or closes it
(closed_by recovery); what it did is said here and on Home's card.

Hazard: one window, many apps (the GUI tests). The beat is cancelled when the app stops, before its store closes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from kivy.clock import Clock
from kivy.metrics import dp, sp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout

from ... import i18n
from ...patrol import FixedPointRow, PatrolPresenter, PatrolSummary, PlanView
from ...presenters import InputError
from ..format import local_time, location_text
from ..pickers import PhotoTaker, ask_confirm
from ..widgets import DANGER, MUTED, OK, PRIMARY, WARN, BigButton, Card, FlatButton, Text, Title, Toggle, scrolling_column
from .base import BaseScreen

__all__ = ["PatrolScreen", "PatrolCard", "duration_text", "distance_text", "plan_line", "plan_text"]

log = logging.getLogger(__name__)

BEAT_S = 1.0  # how often the recorder is asked for a fix (it keeps at most one per interval)


def duration_text(seconds: int) -> str:
    """1 h 5 min / 12 min, in the app's language."""
    minutes = seconds // 60
    if minutes >= 60:
        return i18n.t("patrol.hm", hours=minutes // 60, minutes=minutes % 60)
    return i18n.t("patrol.minutes", minutes=minutes)


def distance_text(metres: float) -> str:
    """850 m / 2.35 km."""
    return i18n.t("patrol.km", km=metres / 1000) if metres >= 1000 else i18n.t("patrol.m", m=metres)


def _clock_time(ms: int) -> str:
    """A time of today as HH:MM, local."""
    return datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone().strftime("%H:%M")


def _point_name(row: FixedPointRow) -> str:
    return (row.name_en or row.name) if i18n.language() == "en" else row.name


def _hours(plan: PlanView) -> str:
    sep = "、" if i18n.language() == "zh" else ", "
    return sep.join(i18n.t("patrol.plan_hour", hour=h) for h in plan.hours) or "—"


def plan_line(plan: PlanView, names: dict[str, str] | None = None) -> str:
    """A grid's plan in one line (Home): rounds a day and the hours; ``names``: grid code -> name."""
    return i18n.t("patrol.plan", grid=(names or {}).get(plan.grid) or plan.grid, rounds=plan.rounds_per_day if plan.rounds_per_day is not None
                  else "—", hours=_hours(plan))


def plan_text(plan: PlanView, names: dict[str, str] | None = None) -> str:
    """A grid's patrol plan in a few lines: rounds and hours, busy weekdays, the points first, the summary."""
    sep = "、" if i18n.language() == "zh" else ", "
    lines = [plan_line(plan, names)]
    if plan.busy_weekdays:
        lines.append(i18n.t("patrol.plan_busy", days=sep.join(i18n.t(f"weekday.{d}") for d in plan.busy_weekdays)))
    if plan.points:
        lines.append(i18n.t("patrol.plan_points", names=sep.join(plan.points)))
    summary = (plan.summary_en or plan.summary) if i18n.language() == "en" else (plan.summary or plan.summary_en)
    if summary:
        lines.append(summary)
    return "\n".join(lines)


def keep_screen_on(on: bool) -> None:
    """Android: keep the screen on while a patrol runs (the recorder beats only while the app is in front).

    Untested on a device (no Android here); a failure is logged and changes nothing else.
    """
    from ...location import on_android

    if not on_android():
        return
    try:
        from android.runnable import run_on_ui_thread  # python-for-android's modules
        from jnius import autoclass
    except ImportError:
        return

    @run_on_ui_thread
    def apply() -> None:
        try:
            window = autoclass("org.kivy.android.PythonActivity").mActivity.getWindow()
            flag = autoclass("android.view.WindowManager$LayoutParams").FLAG_KEEP_SCREEN_ON
            window.addFlags(flag) if on else window.clearFlags(flag)
        except Exception:  # noqa: BLE001 - the patrol records all the same while the screen is on
            log.warning("patrol: could not keep the screen on", exc_info=True)

    apply()


class PatrolCard(Card):
    """Home's section: today's patrol (count, time, distance), fixed points due and visited, the plan in one line
    per grid; the button that opens the patrol. Compact: it shares Home's left column with the status card."""

    def __init__(self, app: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.app = app
        top = BoxLayout(size_hint_y=None, height=dp(64), spacing=dp(12))
        self.title = Title(size_hint_y=None, height=dp(64))
        self.open = FlatButton(size_hint_x=None, width=dp(190))
        self.open.bind(on_release=lambda *_: self.app.go("patrol"))
        top.add_widget(self.title)
        top.add_widget(self.open)
        self.today = Text(font_size=sp(20))
        self.points = Text(font_size=sp(20))
        self.plan = Text(tint=MUTED, font_size=sp(17), max_lines=2, shorten=True, shorten_from="right")
        self.note = Text(tint=WARN, font_size=sp(17))  # shown only when there is something to say
        for widget in (top, self.today, self.points, self.plan):
            self.add_widget(widget)

    def refresh(self) -> None:
        """Read today's figures again (local, quick) and show them in the current language."""
        screen = self.app.screens.get("patrol")
        self.title.text = i18n.t("patrol.today_title")
        if self.app.core is None or screen is None:
            return
        try:
            summary = screen.presenter().summary()
        except Exception:  # noqa: BLE001 - Home must open even if the patrol figures cannot be read
            log.warning("patrol: Home's figures could not be read", exc_info=True)
            return
        self.show(summary, screen.startup)

    def show(self, summary: PatrolSummary, startup: str | None = None) -> None:
        """Set the card from a summary."""
        self.today.text = i18n.t("patrol.today", count=summary.patrols, time=duration_text(summary.seconds),
                                 distance=distance_text(summary.distance_m))
        self.points.text = i18n.t("patrol.points_summary", due=summary.due, visited=summary.visited_today)
        self.points.tint = WARN if summary.due else OK
        names = {g.code: g.name or g.code for g in self.app.core.grids()} if self.app.core is not None else {}
        self.plan.text = "\n".join(plan_line(p, names) for p in summary.plans) if summary.plans \
            else i18n.t("patrol.no_plan")
        self.note.text = i18n.t(f"patrol.{startup}") if startup else ""  # until the worker starts or stops one
        if self.note.text and self.note.parent is None:
            self.add_widget(self.note)
        elif not self.note.text and self.note.parent is not None:
            self.remove_widget(self.note)
        self.open.text = i18n.t("patrol.open_running") if summary.running else i18n.t("patrol.open")
        self.open.tint = OK if summary.running else PRIMARY


class PointRow(BoxLayout):
    """One fixed point: its name, due or when visited, how often and how near; a check-in button."""

    def __init__(self, row: FixedPointRow, on_check_in: Any, **kwargs: Any):
        super().__init__(orientation="horizontal", size_hint_y=None, height=dp(92), spacing=dp(12), **kwargs)
        self.row = row
        words = BoxLayout(orientation="vertical")
        when = (_clock_time(row.last_visit_ms) if row.visited_today else local_time(row.last_visit_ms)) \
            if row.last_visit_ms else None
        state = i18n.t("patrol.due") if row.due else (
            i18n.t("patrol.visited_at", when=when) if when else i18n.t("patrol.not_due"))
        self.name = Text(text=_point_name(row), font_size=sp(22), bold=True)
        self.state = Text(text=f"{state} · " + i18n.t("patrol.every", hours=row.every_hours or "—",
                                                     radius=row.radius_m or "—"),
                          tint=DANGER if row.due else OK, font_size=sp(18))
        words.add_widget(self.name)
        words.add_widget(self.state)
        self.check_in = FlatButton(text=i18n.t("patrol.check_in"), filled=False, size_hint_x=None, width=dp(210),
                                   font_size=sp(20))
        self.check_in.bind(on_release=lambda *_: on_check_in(row))
        self.add_widget(words)
        self.add_widget(self.check_in)


class PatrolScreen(BaseScreen):
    """The patrol: start and stop, what the track holds, the fixed points, the plan."""

    title_key = "patrol.title"

    def build(self) -> None:
        self._presenter: PatrolPresenter | None = None
        self.grid: str | None = None  # the grid chosen for the next patrol
        self.checking: FixedPointRow | None = None  # the fixed point a check-in photo is for
        self.taker = PhotoTaker(self, self.presenter, self._photo_added)
        self.point_rows: list[PointRow] = []
        self.screen_kept_on = False  # Android's keep-screen-on flag, set while a patrol runs

        row = BoxLayout(spacing=dp(24))
        left = BoxLayout(orientation="vertical", spacing=dp(16), size_hint_x=0.46)
        status = Card()
        self.state = Title()
        self.grid_title = Text(tint=MUTED)
        self.grid_choices = GridLayout(cols=2, spacing=dp(10), size_hint_y=None)
        self.grid_choices.bind(minimum_height=self.grid_choices.setter("height"))
        self.start_stop = BigButton(height=dp(110))
        self.start_stop.bind(on_release=lambda *_: self.start_or_stop())
        self.elapsed = Text(font_size=sp(24))
        self.points = Text()
        self.marks = Text(tint=WARN, font_size=sp(18))
        self.gps = Text(tint=MUTED, font_size=sp(18))
        self.rule = Text(tint=MUTED, font_size=sp(16))
        for widget in (self.state, self.grid_title, self.grid_choices, self.start_stop, self.elapsed, self.points,
                       self.marks, self.gps, self.rule):
            status.add_widget(widget)
        left.add_widget(status)
        left.add_widget(BoxLayout())
        row.add_widget(left)

        right = BoxLayout(orientation="vertical", spacing=dp(12), size_hint_x=0.54)
        self.points_title = Title()
        right.add_widget(self.points_title)
        self.point_list = scrolling_column(right)
        plan = Card()  # below the fixed points, whose list scrolls in what is left
        self.plan = Text(font_size=sp(18))
        plan.add_widget(self.plan)
        right.add_widget(plan)
        row.add_widget(right)
        self.body.add_widget(row)

        self.startup: str | None = None  # what recover did when the app started: resumed, recovered or None
        try:
            self.startup = self.presenter().recover()
        except Exception:  # noqa: BLE001 - the app must open; the patrol stays open for the next start
            log.exception("patrol: could not resume or close the open patrol at start-up")
        if self.startup:
            self.say(i18n.t(f"patrol.{self.startup}"), "ok")
        self.beat = Clock.schedule_interval(self._tick, BEAT_S)
        self.app.bind(on_stop=lambda *_: self.beat.cancel())
        if self.app.runner is not None:  # a sync may bring fixed points, visits of colleagues, a plan
            self.app.runner.on_finished(lambda _outcome: self._synced())

    def _synced(self) -> None:
        self.presenter().recorder.forget_cache()
        if self.manager is not None and self.manager.current == self.name:
            self.refresh()

    def presenter(self) -> PatrolPresenter:
        """The screen's presenter (a new one for a new core)."""
        if self._presenter is None or self._presenter.core is not self.core:
            self._presenter = PatrolPresenter(self.core)
        return self._presenter

    # --- the beat ---------------------------------------------------------------------------------------

    def _tick(self, _dt: float) -> None:
        if self.core is None:
            return
        try:
            kept = self.presenter().tick()
        except Exception:  # noqa: BLE001 - one bad beat must not stop the next ones
            log.exception("patrol: a beat of the recorder failed")
            return
        shown = self.manager is not None and self.manager.current == self.name
        if kept is not None and kept.visits:
            names = {row.point_id: _point_name(row) for row in self.presenter().fixed_points()}
            self.say(i18n.t("patrol.visited", name="、".join(names.get(p, p[-6:]) for p in kept.visits)), "ok")
            if shown:
                self._show_points()
        if shown:
            self._show_live()
        elif kept is not None and self.manager is not None and self.manager.current == "home":
            self.app.screens["home"].patrol_card.refresh()

    # --- actions ----------------------------------------------------------------------------------------

    def choose_grid(self, code: str) -> None:
        self.grid = code

    def start_or_stop(self) -> None:
        """Start a patrol of the chosen grid, or (after a yes) stop the running one."""
        presenter = self.presenter()
        if presenter.live().running:
            ask_confirm(i18n.t("patrol.stop") + "?", i18n.t("patrol.stop"), self.stop, danger=True)
            return
        try:
            presenter.start(self.grid)
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.startup = None
        self.say(i18n.t("patrol.started"), "ok")
        self.refresh()

    def stop(self) -> None:
        """Stop the running patrol (the presenter seals the rest of the track)."""
        self.presenter().stop()
        self.startup = None
        self.refresh()
        self.say(i18n.t("patrol.stopped"), "ok")

    def check_in(self, row: FixedPointRow) -> None:
        """Take a photo; the visit is written when it is ready (`_photo_added`)."""
        self.checking = row
        self.taker.take()

    def _photo_added(self, sha: str) -> None:
        row, self.checking = self.checking, None
        if row is None:
            return
        try:
            self.presenter().check_in(row.point_id, [sha])
        except InputError as exc:
            self.say(i18n.error_text(exc.field, exc.code), "error")
            return
        self.say(i18n.t("patrol.checked_in", name=_point_name(row)), "ok")
        self._show_points()

    # --- drawing ----------------------------------------------------------------------------------------

    def refresh(self) -> None:
        super().refresh()
        if self.core is None or self.core.user_id is None:
            return
        view = self.presenter().view()
        codes = [g.code for g in view.grids]
        if self.grid not in codes:
            self.grid = codes[0] if codes else None
        self.grid_choices.clear_widgets()
        self.grid_title.text = i18n.t("patrol.choose_grid")
        if not view.live.running:
            for grid in view.grids:
                toggle = Toggle(text=grid.name or grid.code, group="patrol-grid", allow_no_selection=False,
                                state="down" if grid.code == self.grid else "normal")
                toggle.bind(on_release=lambda _b, code=grid.code: self.choose_grid(code))
                self.grid_choices.add_widget(toggle)
        self.grid_title.opacity = 0 if view.live.running else 1
        names = {g.code: g.name or g.code for g in view.grids}
        self.plan.text = "\n\n".join(plan_text(p, names) for p in view.summary.plans) if view.summary.plans \
            else i18n.t("patrol.no_plan")
        self._show_rows(view.rows)
        self._show_live()

    def _show_points(self) -> None:
        self._show_rows(self.presenter().fixed_points())

    def _show_rows(self, rows: list[FixedPointRow]) -> None:
        self.points_title.text = i18n.t("patrol.points_summary", due=sum(1 for r in rows if r.due),
                                        visited=sum(1 for r in rows if r.visited_today))
        self.point_list.clear_widgets()
        self.point_rows = [PointRow(row, self.check_in) for row in rows]
        for widget in self.point_rows:
            self.point_list.add_widget(widget)
        if not rows:
            self.point_list.add_widget(Text(text=i18n.t("patrol.no_points"), tint=MUTED))

    def _show_live(self) -> None:
        live = self.presenter().live()
        if live.running != self.screen_kept_on:
            self.screen_kept_on = live.running
            keep_screen_on(live.running)
        names = {g.code: g.name or g.code for g in self.core.grids()} if live.running else {}
        if live.running:
            self.state.text = i18n.t("patrol.running", grid=names.get(live.grid, live.grid))
            self.start_stop.text = i18n.t("patrol.stop")
            self.start_stop.tint = DANGER
            self.elapsed.text = i18n.t("patrol.elapsed", time=duration_text(live.elapsed_s)) + "   " + \
                i18n.t("patrol.distance", distance=distance_text(live.distance_m))
            self.points.text = i18n.t("patrol.points", count=live.points)
            marks = []
            if live.poor:
                marks.append(i18n.t("patrol.poor", count=live.poor))
            if live.flagged:
                marks.append(i18n.t("patrol.flagged", count=live.flagged))
            self.marks.text = "\n".join(marks)
        else:
            self.state.text = i18n.t("patrol.idle")
            self.start_stop.text = i18n.t("patrol.start")
            self.start_stop.tint = OK
            self.elapsed.text = self.points.text = self.marks.text = ""
        text, source = location_text(live.fix) if live.fix is not None and live.fix.source == "gps" else (None, None)
        self.gps.text = i18n.t("patrol.gps", where=text) if text else i18n.t("patrol.no_fix")
        self.rule.text = i18n.t("patrol.interval_note", seconds=self.core.settings.patrol_interval_s)
