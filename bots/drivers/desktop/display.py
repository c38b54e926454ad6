"""The X display as the desktop driver sees it (python-xlib): top-level windows by title,
focus given and verified, windows closed politely, the screen's size.

Works with and without a window manager. Without one (bare Xvfb) nothing gives a new
window the focus: ``focus`` sets it itself. With one, it also asks the manager
(_NET_ACTIVE_WINDOW), which would otherwise take the focus back.

``settled`` is the X counterpart of Windows' WaitForInputIdle: keys sent to a legacy
client are handled when its event loop gets to them, after whatever it is busy with (a
synchronous database call freezes the UI of a 2005 client). A `_NET_WM_PING` sent after
the keys is answered only once every event before it has been handled, so a step that
follows looks at the client as the keys left it, not as it was before them.
"""

from __future__ import annotations

import fnmatch
import itertools
import select
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from Xlib import X, Xatom, display, error
from Xlib.protocol import event

T = TypeVar("T")
POLL = 0.05  # seconds between two looks at the display while waiting


@dataclass(frozen=True)
class Window:
    """A top-level client window: its X id and its title when it was listed."""

    id: int  # noqa: A003 - the X window id
    title: str

    def __str__(self) -> str:
        return f"window {self.title!r}" if self.title else "an untitled window"


def wait_until(check: Callable[[], T | None], timeout: float) -> T | None:
    """``check()`` until it gives something other than None, for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None or time.monotonic() >= deadline:
            return found
        time.sleep(POLL)  # polling the display; bounded by the deadline


class Display:
    """One connection to an X display."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.conn = display.Display(name)
        self.root = self.conn.screen().root
        self._atoms: dict[str, int] = {}
        # A client answers a ping by sending it to the root window for the manager:
        # whoever selects SubstructureNotify on the root hears it (several clients may).
        self.root.change_attributes(event_mask=X.SubstructureNotifyMask)
        self._pings = itertools.count(1)

    def close(self) -> None:
        self.conn.close()

    def atom(self, name: str) -> int:
        if name not in self._atoms:
            self._atoms[name] = self.conn.intern_atom(name)
        return self._atoms[name]

    def screen_size(self) -> tuple[int, int]:
        screen = self.conn.screen()
        return screen.width_in_pixels, screen.height_in_pixels

    def window_manager(self) -> bool:
        """Is a window manager running (EWMH's _NET_SUPPORTING_WM_CHECK on the root)?"""
        prop = self.root.get_full_property(self.atom("_NET_SUPPORTING_WM_CHECK"), X.AnyPropertyType)
        return prop is not None and len(prop.value) > 0

    # -- windows ------------------------------------------------------------------------

    def _title(self, win: Any) -> str | None:
        """A window's title (_NET_WM_NAME, else WM_NAME), None when it has neither."""
        prop = win.get_full_property(self.atom("_NET_WM_NAME"), self.atom("UTF8_STRING"))
        if prop is not None:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        prop = win.get_full_property(Xatom.WM_NAME, X.AnyPropertyType)
        if prop is None:
            return None
        value = prop.value
        if isinstance(value, bytes):
            return value.decode(
                "utf-8" if prop.property_type != Xatom.STRING else "latin-1", "replace"
            )
        return str(value)

    def _client(self, win: Any, depth: int = 0) -> tuple[Any, str] | None:
        """The client window at or under a top-level window (a manager's frame holds the
        client one or two levels down), with its title."""
        title = self._title(win)
        if title is not None:
            return win, title
        if depth >= 2:
            return None
        for child in reversed(win.query_tree().children):
            found = self._client(child, depth + 1)
            if found is not None:
                return found
        return None

    def windows(self, pattern: str | None = None) -> list[Window]:
        """The viewable top-level windows whose title matches ``pattern`` (an fnmatch
        glob, case-sensitive; "" only an untitled window; None every window), the most
        recently raised or mapped first (the top of the stacking order)."""
        found = []
        for top in reversed(self.root.query_tree().children):
            try:
                attrs = top.get_attributes()
                if attrs.map_state != X.IsViewable or attrs.override_redirect:
                    continue
                client = self._client(top)
            except error.XError:
                continue  # gone while we looked
            if client is None:
                continue
            win, title = client
            if pattern is None or (
                title == "" if pattern == "" else fnmatch.fnmatchcase(title, pattern)
            ):
                found.append(Window(win.id, title))
        return found

    def popups(self) -> set[int]:
        """The viewable override-redirect windows (posted menus, completion lists)."""
        ids = set()
        for top in self.root.query_tree().children:
            try:
                attrs = top.get_attributes()
            except error.XError:
                continue
            if attrs.override_redirect and attrs.map_state == X.IsViewable:
                ids.add(top.id)
        return ids

    def window_at(self, x: int, y: int) -> Window | None:
        """The top-level client window showing at (x, y), if any."""
        for window in self.windows():
            try:
                left, top, width, height = self.geometry(window)
            except error.XError:
                continue
            if left <= x < left + width and top <= y < top + height:
                return window
        return None

    def is_open(self, window: Window) -> bool:
        """Is the window still there and viewable?"""
        try:
            return (
                self.conn.create_resource_object("window", window.id).get_attributes().map_state
                == X.IsViewable
            )
        except error.XError:
            return False

    def title_of(self, window: Window) -> str | None:
        try:
            return self._title(self.conn.create_resource_object("window", window.id))
        except error.XError:
            return None

    def geometry(self, window: Window) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the window on the screen."""
        win = self.conn.create_resource_object("window", window.id)
        geo = win.get_geometry()
        origin = win.translate_coords(self.root, 0, 0)
        return -origin.x, -origin.y, geo.width, geo.height

    # -- focus --------------------------------------------------------------------------

    def has_focus(self, window: Window) -> bool:
        """Does the focus lie in the window (it, or one of its descendants)?"""
        focus = self.conn.get_input_focus().focus
        node = focus
        for _ in range(32):
            if not hasattr(node, "id") or node.id == self.root.id:
                return False
            if node.id == window.id:
                return True
            try:
                node = node.query_tree().parent
            except error.XError:
                return False
        return False

    def focus(self, window: Window, timeout: float = 2.0) -> bool:
        """Raise the window and give it the focus; True once the focus is verified in it."""
        win = self.conn.create_resource_object("window", window.id)
        try:
            if self.window_manager():
                data = (32, [2, X.CurrentTime, 0, 0, 0])  # 2: a pager asks, honoured
                message = event.ClientMessage(
                    window=win, client_type=self.atom("_NET_ACTIVE_WINDOW"), data=data
                )
                mask = X.SubstructureRedirectMask | X.SubstructureNotifyMask
                self.root.send_event(message, event_mask=mask)
            win.configure(stack_mode=X.Above)
            win.set_input_focus(X.RevertToParent, X.CurrentTime)
            self.conn.sync()
        except error.XError:
            return False

        def done() -> bool | None:
            if self.has_focus(window):
                return True
            try:  # a manager may have been slower than us: ask once more
                win.set_input_focus(X.RevertToParent, X.CurrentTime)
                self.conn.sync()
            except error.XError:
                return None
            return None

        return bool(wait_until(done, timeout))

    # -- input idle ---------------------------------------------------------------------

    def same_client(self, one: Window, other: Window) -> bool:
        """Were both windows made by one X client (their ids share its resource base)?"""
        base = ~self.conn.display.info.resource_id_mask
        return (one.id & base) == (other.id & base)

    def settled(self, window: Window, timeout: float) -> bool | None:
        """Wait until the client that owns ``window`` has handled every event sent to it
        so far (its answer to a ``_NET_WM_PING``). True once it answered; False when it
        did not within ``timeout`` s (busy, hung, or a client that ignores pings); None
        when the client has no window left to ask (it ended).

        A ping goes to each of the client's top-level windows, shown or not: the window
        the keys went to may be a dialog those very keys close, and a closed window
        answers nothing. The first answer is enough: the client handles its events in
        order, so any answer comes after the keys."""
        targets = self._top_levels_of(window)
        protocols, ping = self.atom("WM_PROTOCOLS"), self.atom("_NET_WM_PING")
        token = next(self._pings) & 0xFFFFFFFF
        sent = 0
        for target in targets:
            win = self.conn.create_resource_object("window", target)
            message = event.ClientMessage(
                window=win, client_type=protocols, data=(32, [ping, token, target, 0, 0])
            )
            caught = error.CatchError(error.BadWindow)
            win.send_event(message, event_mask=0, onerror=caught)  # to the window's owner
            self.conn.sync()
            sent += caught.get_error() is None
        if not sent:
            return None
        deadline = time.monotonic() + timeout
        while True:
            while self.conn.pending_events():
                answer = self.conn.next_event()
                if (
                    answer.type == X.ClientMessage
                    and answer.client_type == protocols
                    and answer.data[1][0] == ping
                    and answer.data[1][1] == token
                ):
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([self.conn.fileno()], [], [], min(remaining, 0.5))

    def _top_levels_of(self, window: Window) -> list[int]:
        """The ids of the top-level windows (with WM_PROTOCOLS, shown or not) of the
        client that made ``window``."""
        protocols = self.atom("WM_PROTOCOLS")
        found = []
        for top in self.root.query_tree().children:
            try:
                client = self._client(top)
                if client is None or not self.same_client(Window(client[0].id, ""), window):
                    continue
                if client[0].get_full_property(protocols, X.AnyPropertyType) is not None:
                    found.append(client[0].id)
            except error.XError:
                continue  # gone while we looked
        return found

    def close_window(self, window: Window) -> None:
        """Ask the window to close (WM_DELETE_WINDOW), as its title bar's X does."""
        win = self.conn.create_resource_object("window", window.id)
        protocols = self.atom("WM_PROTOCOLS")
        message = event.ClientMessage(
            window=win,
            client_type=protocols,
            data=(32, [self.atom("WM_DELETE_WINDOW"), X.CurrentTime, 0, 0, 0]),
        )
        try:
            win.send_event(message)
            self.conn.sync()
        except error.XError:
            pass  # gone already: closed is what we wanted
