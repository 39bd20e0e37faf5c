"""The look shared by every screen: colours, sizes and a few styled widgets for a 10-inch touch tablet.

Touch targets are at least 64 dp high (Android asks for 48 dp; gloves and
sunlight ask for more), text is 20 sp and up, and every screen has the same
header bar with its title and a back button in the same place.
"""

from __future__ import annotations

from kivy.graphics import Color, Rectangle, RoundedRectangle
from kivy.lang import Builder
from kivy.metrics import dp, sp
from kivy.properties import BooleanProperty, ColorProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.textinput import TextInput
from kivy.uix.togglebutton import ToggleButton

__all__ = ["PRIMARY", "BACKGROUND", "TEXT", "MUTED", "WARN", "DANGER", "OK", "SURFACE", "TOUCH", "BIG_TOUCH",
           "BigButton", "FlatButton", "Toggle", "Title", "Text", "Field", "Card", "HeaderBar", "ListRow", "hex_color",
           "scrolling_column"]


def hex_color(text: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """#rrggbb as a Kivy colour."""
    text = text.lstrip("#")
    return (int(text[0:2], 16) / 255, int(text[2:4], 16) / 255, int(text[4:6], 16) / 255, alpha)


PRIMARY = hex_color("#1565c0")
PRIMARY_DARK = hex_color("#0d47a1")
BACKGROUND = hex_color("#eef2f7")
SURFACE = hex_color("#ffffff")
TEXT = hex_color("#1f2933")
MUTED = hex_color("#616e7c")
WARN = hex_color("#b26a00")
DANGER = hex_color("#c62828")
OK = hex_color("#2e7d32")
DISABLED = hex_color("#b0bac5")
HIGHLIGHT = hex_color("#fff4d6")

TOUCH = dp(64)  # every button and input at least this high
BIG_TOUCH = dp(120)  # the home screen's main actions

Builder.load_string("""
<FlatButton>:
    background_normal: ''
    background_down: ''
    background_disabled_normal: ''
    background_color: 0, 0, 0, 0
    color: (1, 1, 1, 1) if self.filled else self.tint
    disabled_color: (1, 1, 1, 0.8) if self.filled else (0.6, 0.64, 0.68, 1)
    font_size: '22sp'
    size_hint_y: None
    height: self.touch_height
    halign: 'center'
    valign: 'middle'
    text_size: self.width - dp(16), None
    canvas.before:
        Color:
            rgba: ((0.69, 0.73, 0.77, 1) if self.filled else (0, 0, 0, 0)) if self.disabled else ((self.tint if self.state == 'normal' else self.tint_down) if self.filled else ((0, 0, 0, 0) if self.state == 'normal' else (self.tint[0], self.tint[1], self.tint[2], 0.15)))
        RoundedRectangle:
            pos: self.pos
            size: self.size
            radius: [dp(10)]
        Color:
            rgba: (0, 0, 0, 0) if self.filled else (self.tint if not self.disabled else (0.69, 0.73, 0.77, 1))
        Line:
            rounded_rectangle: (self.x + 1, self.y + 1, self.width - 2, self.height - 2, dp(10))
            width: dp(1.5)

<Toggle>:
    background_normal: ''
    background_down: ''
    background_disabled_normal: ''
    background_disabled_down: ''
    background_color: 0, 0, 0, 0
    color: (1, 1, 1, 1) if self.state == 'down' else (0.12, 0.16, 0.2, 1)
    disabled_color: 0.6, 0.64, 0.68, 1
    font_size: '20sp'
    size_hint_y: None
    height: dp(64)
    halign: 'center'
    valign: 'middle'
    text_size: self.width - dp(12), None
    canvas.before:
        Color:
            rgba: self.tint if self.state == 'down' else ((0.93, 0.94, 0.96, 1) if self.disabled else (1, 1, 1, 1))
        RoundedRectangle:
            pos: self.pos
            size: self.size
            radius: [dp(8)]
        Color:
            rgba: self.tint if not self.disabled else (0.8, 0.83, 0.86, 1)
        Line:
            rounded_rectangle: (self.x + 1, self.y + 1, self.width - 2, self.height - 2, dp(8))
            width: dp(1.2)

<Title>:
    color: 0.12, 0.16, 0.2, 1
    font_size: '26sp'
    bold: True
    size_hint_y: None
    height: max(self.texture_size[1] + dp(8), dp(44))
    text_size: self.width, None
    halign: 'left'
    valign: 'middle'

<Text>:
    color: self.tint
    font_size: '20sp'
    size_hint_y: None
    height: max(self.texture_size[1] + dp(6), dp(32))
    text_size: self.width, None
    halign: 'left'
    valign: 'middle'

<Field>:
    font_size: '22sp'
    size_hint_y: None
    height: dp(64) if not self.multiline else dp(140)
    padding: [dp(14), dp(16), dp(14), dp(12)]
    background_normal: ''
    background_active: ''
    background_color: 1, 1, 1, 1
    foreground_color: 0.12, 0.16, 0.2, 1
    cursor_color: 0.08, 0.4, 0.75, 1
    write_tab: False
    canvas.after:
        Color:
            rgba: (0.08, 0.4, 0.75, 1) if self.focus else (0.7, 0.74, 0.78, 1)
        Line:
            rectangle: (self.x + 1, self.y + 1, self.width - 2, self.height - 2)
            width: dp(1.2)

<Card>:
    orientation: 'vertical'
    padding: dp(20)
    spacing: dp(12)
    size_hint_y: None
    height: self.minimum_height
    canvas.before:
        Color:
            rgba: self.fill
        RoundedRectangle:
            pos: self.pos
            size: self.size
            radius: [dp(12)]

<ListRow>:
    orientation: 'horizontal'
    padding: [dp(20), dp(10)]
    spacing: dp(16)
    canvas.before:
        Color:
            rgba: self.fill
        RoundedRectangle:
            pos: self.x, self.y + dp(4)
            size: self.width, self.height - dp(8)
            radius: [dp(10)]
        Color:
            rgba: self.stripe
        Rectangle:
            pos: self.x, self.y + dp(4)
            size: dp(8), self.height - dp(8)
    BoxLayout:
        orientation: 'vertical'
        Label:
            text: root.title
            color: 0.12, 0.16, 0.2, 1
            font_size: '22sp'
            bold: True
            text_size: self.size
            halign: 'left'
            valign: 'middle'
            shorten: True
            shorten_from: 'right'
        Label:
            text: root.subtitle
            color: 0.38, 0.43, 0.49, 1
            font_size: '18sp'
            text_size: self.size
            halign: 'left'
            valign: 'middle'
            shorten: True
            shorten_from: 'right'

<HeaderBar>:
    size_hint_y: None
    height: dp(76)
    padding: [dp(12), dp(6)]
    spacing: dp(12)
    canvas.before:
        Color:
            rgba: 0.08, 0.4, 0.75, 1
        Rectangle:
            pos: self.pos
            size: self.size
""")


class FlatButton(Button):
    """A flat button: filled with its tint, or outlined when ``filled`` is False."""

    filled = BooleanProperty(True)
    tint = ColorProperty(PRIMARY)
    tint_down = ColorProperty(PRIMARY_DARK)
    touch_height = dp(64)

    def __init__(self, **kwargs):
        height = kwargs.pop("height", None)
        super().__init__(**kwargs)
        if height is not None:
            self.height = height


class BigButton(FlatButton):
    """The home screen's main actions: large, with large text."""

    touch_height = BIG_TOUCH

    def __init__(self, **kwargs):
        kwargs.setdefault("font_size", sp(30))
        super().__init__(**kwargs)


class Toggle(ToggleButton):
    """A choice among several (category, language, photo size): filled with its tint (blue) when chosen."""

    tint = ColorProperty(PRIMARY)


class Title(Label):
    """A section title."""


class Text(Label):
    """A line or paragraph of text that wraps to its width."""

    tint = ColorProperty(TEXT)


class Field(TextInput):
    """A text input sized for fingers."""


class Card(BoxLayout):
    """A white panel that grows with its content."""

    fill = ColorProperty(SURFACE)


class ListRow(ButtonBehavior, BoxLayout):
    """A row of a long list (My cases, rental houses), reused by its RecycleView as the list scrolls.

    A card with a title and a subtitle, and a stripe at its left edge; a subclass's rule sets
    ``fill`` and ``stripe`` and adds what stands at the right (``status_text`` and the like).
    """

    title = StringProperty("")
    subtitle = StringProperty("")
    status_text = StringProperty("")
    fill = ColorProperty(SURFACE)
    stripe = ColorProperty([0, 0, 0, 0])


class HeaderBar(BoxLayout):
    """The blue bar at the top of every screen: back button, title, and screen-specific buttons on the right."""

    title = StringProperty("")

    def __init__(self, *, on_back=None, **kwargs):
        super().__init__(**kwargs)
        self.back = None
        if on_back is not None:
            self.back = FlatButton(size_hint=(None, None), width=dp(140), height=dp(60), filled=False,
                                   tint=(1, 1, 1, 1), font_size=sp(22))
            self.back.bind(on_release=lambda *_: on_back())
            self.add_widget(self.back)
        self.label = Label(font_size=sp(28), bold=True, color=(1, 1, 1, 1), halign="left", valign="middle")
        self.label.bind(size=lambda w, s: setattr(w, "text_size", s))
        self.bind(title=lambda w, v: setattr(self.label, "text", v))
        self.add_widget(self.label)


def scrolling_column(parent, share: float = 1, *, spacing: float = dp(10),
                     padding: tuple = (0, 0, dp(12), 0)) -> BoxLayout:
    """A vertical BoxLayout as tall as its content, in a ScrollView added to ``parent`` (``share`` of its width).

    The default padding keeps the content clear of the scroll bar.
    """
    scroll = ScrollView(do_scroll_x=False, size_hint_x=share, bar_width=dp(8))
    column = BoxLayout(orientation="vertical", spacing=spacing, size_hint_y=None, padding=list(padding))
    column.bind(minimum_height=column.setter("height"))
    scroll.add_widget(column)
    parent.add_widget(scroll)
    return column


def paint_background(widget, color=BACKGROUND) -> None:
    """Give a layout a plain background colour that follows its size."""
    with widget.canvas.before:
        Color(*color)
        rect = Rectangle(pos=widget.pos, size=widget.size)
    widget.bind(pos=lambda w, v: setattr(rect, "pos", v), size=lambda w, v: setattr(rect, "size", v))


def highlight(widget, color=HIGHLIGHT, radius=dp(10)) -> None:
    """A rounded coloured panel behind a widget."""
    with widget.canvas.before:
        Color(*color)
        rect = RoundedRectangle(pos=widget.pos, size=widget.size, radius=[radius])
    widget.bind(pos=lambda w, v: setattr(rect, "pos", v), size=lambda w, v: setattr(rect, "size", v))
