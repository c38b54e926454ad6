"""The client itself: the login, the main window 财务管理系统, and what each key does.

Every *action* (login, query, paging, locate, export) is a synchronous "database call"
on the Tk thread: it draws its faults and sleeps its latency there, so the window does
not redraw and keys pressed meanwhile wait in the X queue, handled afterwards in order.
Dialogs do not grab input; the client keeps a list of its open modal windows and the
main window ignores its keys while one is open.
"""

from __future__ import annotations

import datetime as dt
import time
import tkinter as tk
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from tkinter import font as tkfont
from tkinter import ttk
from typing import Any

from sims.desktop.dialogs import (
    EntryDialog,
    ExportOptionsDialog,
    MessageDialog,
    ProgressDialog,
    TipDialog,
    ViewerWindow,
)
from sims.desktop.exports import LIST_FILENAME, HeldExport, list_csv, list_row, record_count
from sims.desktop.grid import ReportTab, Row
from sims.desktop.keys import mnemonic, track_input, windows_entry
from sims.desktop.savedialog import SaveAsDialog, resolve
from sims.desktop.state import ClientState
from sims.desktop.xtitle import TitleFixer
from sims.erp.reports import VOUCHER, Report
from sims.faults import FOCUS_STEAL, TRUNCATE, Faults, Roll

MSG_BAD_LOGIN = "用户名或密码错误"
MSG_DB_ERROR = "数据库连接失败，请稍后重试。"
MSG_MAINTENANCE = "系统将于今晚22:00进行维护"
MSG_PICK_REPORT = "请先选择一张报表"
MSG_BAD_DATE = "日期格式错误"
MSG_NO_FOLDER = "路径不存在"
NOTICE_EVERY = 25  # 系统消息 after every 25th action
POLL_MS = 200  # the idle check, and how soon a SIGTERM is noticed
FONT = "Noto Sans CJK SC"
GREY = "#d4d0c8"  # the Windows 2000 dialog grey


@dataclass(frozen=True)
class Settings:
    user: str = "clerk"
    password: str = "clerk-demo"
    idle_timeout: float = 300.0


def style(root: tk.Tk) -> None:
    """Fonts and colours of a 2005 Windows client (as far as Tk on X11 goes)."""
    for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont", "TkCaptionFont"):
        tkfont.nametofont(name, root).configure(family=FONT, size=10)
    theme = ttk.Style(root)
    theme.theme_use("default")
    theme.configure(".", background=GREY)
    theme.configure("Treeview", background="white", fieldbackground="white", rowheight=20)
    theme.configure("TNotebook.Tab", padding=(10, 2))
    root.option_add("*Background", GREY)
    root.option_add("*Listbox.Background", "white")
    root.option_add("*Text.Background", "white")
    root.configure(background=GREY)


class MainWindow(tk.Toplevel):
    """财务管理系统: menu, two tabs (待审核(P), 全部报表(A)), a status line."""

    def __init__(self, client: DesktopClient) -> None:
        super().__init__(client.root)
        self.title("财务管理系统")
        self.geometry("1000x700+40+40")
        self.protocol("WM_DELETE_WINDOW", client.quit)
        free = client.when_free
        menubar = tk.Menu(self, tearoff=False)
        files = tk.Menu(menubar, tearoff=False)
        files.add_command(
            label="导出报表(E)", underline=5, accelerator="Ctrl+E", command=client.export_report
        )
        files.add_command(
            label="导出列表(L)", underline=5, accelerator="Ctrl+L", command=client.export_list
        )
        files.add_separator()
        files.add_command(label="注销(O)", underline=3, accelerator="Ctrl+O", command=client.logout)
        files.add_command(label="退出(X)", underline=3, command=client.quit)
        menubar.add_cascade(label="文件(F)", underline=3, menu=files)
        query = tk.Menu(menubar, tearoff=False)
        query.add_command(
            label="按日期查询(D)", underline=6, accelerator="Ctrl+F", command=client.focus_dates
        )
        query.add_command(
            label="定位报表(G)", underline=5, accelerator="Ctrl+G", command=client.locate
        )
        menubar.add_cascade(label="查询(Q)", underline=3, menu=query)
        self.configure(menu=menubar)

        shortcuts: dict[str, Callable[[], None]] = {
            "e": client.export_report,
            "l": client.export_list,
            "o": client.logout,
            "f": client.focus_dates,
            "g": client.locate,
        }
        for key, command in shortcuts.items():
            for variant in (key, key.upper()):
                self.bind(f"<Control-{variant}>", free(command))
        for key, step in (("n", +1), ("b", -1)):
            for variant in (key, key.upper()):
                self.bind(
                    f"<Alt-KeyPress-{variant}>",
                    free(lambda step=step: client.turn_page(self.tab().page + step)),
                )

        today = dt.date.today()
        first = today.replace(day=1)
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        self.notebook = ttk.Notebook(self)
        self.tabs: list[ReportTab] = []
        for text, only_pending in (("待审核(P)", True), ("全部报表(A)", False)):
            tab = ReportTab(
                self.notebook,
                first.isoformat(),
                last.isoformat(),
                on_query=free(client.query),
                # a page number, not an event: run as the main window's other keys are
                on_page=lambda page: free(lambda: client.turn_page(page))(),
            )
            tab.only_pending = only_pending  # type: ignore[attr-defined]
            self.notebook.add(tab, text=text, underline=mnemonic(text))
            self.tabs.append(tab)
        self.notebook.enable_traversal()  # Alt+P / Alt+A, Ctrl+Tab
        status = ttk.Frame(self)
        status.pack(side=tk.BOTTOM, fill=tk.X)
        ttk.Label(status, text=f"操作员：{client.settings.user}", relief=tk.SUNKEN).pack(
            side=tk.LEFT, padx=2, pady=2
        )
        ttk.Label(status, text=f"日期：{today.isoformat()}", relief=tk.SUNKEN).pack(
            side=tk.LEFT, padx=2, pady=2
        )
        ttk.Label(status, text="财务管理系统 V3.2 (Build 2005.08)", relief=tk.SUNKEN).pack(
            side=tk.RIGHT, padx=2, pady=2
        )
        self.notebook.pack(fill=tk.BOTH, expand=True, padx=4, pady=4)
        self.tabs[0].tree.focus_set()

    def tab(self) -> ReportTab:
        return self.tabs[self.notebook.index("current")]


class DesktopClient:
    """The application: its windows, its session, its actions and their faults."""

    def __init__(self, root: tk.Tk, state: ClientState, faults: Faults, settings: Settings) -> None:
        self.root = root
        self.state = state
        self.faults = faults
        self.settings = settings
        self.main: MainWindow | None = None
        self.tip: TipDialog | None = None
        self._modals: list[tk.Toplevel] = []
        self._session_windows: list[tk.Toplevel] = []
        self._held: list[HeldExport] = []
        self._actions = 0
        self._last_input = time.monotonic()
        self._user = ""
        self.quit_requested = False
        self.titles = TitleFixer(root)
        self._build_login()
        self.titles.watch(root)

    # -- windows and modality ----------------------------------------------------------

    def when_free(self, command: Callable[..., None]) -> Callable[..., Any]:
        """A handler for the main window: runs ``command`` unless a modal window is open."""

        def handler(*args: object) -> str | None:
            if self._modals or self.main is None:
                return "break"
            command()
            return "break" if args else None

        return handler

    def _open(self, window: tk.Toplevel, *, modal: bool = True, session: bool = True) -> None:
        """Register a new window: modal ones block the main window's keys until gone."""
        track_input(window)
        self.titles.watch(window)
        if modal:
            self._modals.append(window)
        if session:
            self._session_windows.append(window)

        def forget(event: tk.Event) -> None:
            if event.widget is window:
                for registry in (self._modals, self._session_windows):
                    if window in registry:
                        registry.remove(window)

        window.bind("<Destroy>", forget, add="+")

    def _message(
        self,
        title: str,
        text: str,
        on_close: Callable[[], None] | None = None,
        *,
        icon: str = "ℹ",
    ) -> MessageDialog:
        owner = self.main if self.main is not None else self.root
        dialog = MessageDialog(owner, title, text, on_close, icon=icon)
        self._open(dialog, session=self.main is not None)
        return dialog

    def _take_focus_when_mapped(self, window: tk.Toplevel) -> None:
        """focus_force once the window is on screen: how 系统消息 and the viewer steal."""

        def grab_focus(event: tk.Event) -> None:
            if event.widget is window:
                window.focus_force()

        window.bind("<Map>", grab_focus, add="+")

    def _return_focus(self, owner: tk.Toplevel | tk.Tk | None) -> Callable[[], None]:
        """Give the focus back to ``owner`` when a window closes, as Windows activates the
        owner of a closed dialog (without it, a bare X server leaves nobody focused)."""

        def back() -> None:
            if owner is not None and owner.winfo_exists() and owner.winfo_viewable():
                owner.focus_force()

        return back

    # -- start, login, logout ----------------------------------------------------------

    def _build_login(self) -> None:
        root = self.root
        root.title("用户登录")
        root.resizable(False, False)
        root.protocol("WM_DELETE_WINDOW", self.quit)
        body = ttk.Frame(root, padding=16)
        body.pack(fill=tk.BOTH, expand=True)
        ttk.Label(body, text="财务管理系统", font=(FONT, 16, "bold")).grid(
            row=0, column=0, columnspan=2, pady=(0, 12)
        )
        ttk.Label(body, text="用户名:").grid(row=1, column=0, sticky=tk.W)
        self.user_entry = ttk.Entry(body, width=24)
        self.user_entry.grid(row=1, column=1, padx=8, pady=4)
        windows_entry(self.user_entry)
        buttons = ttk.Frame(body)
        buttons.grid(row=2, column=0, columnspan=2, sticky=tk.E, pady=(12, 0))
        ttk.Button(buttons, text="确定", width=8, command=self._ask_password).pack(
            side=tk.LEFT, padx=4
        )
        ttk.Button(buttons, text="取消", width=8, command=self.quit).pack(side=tk.LEFT)
        for key in ("<Return>", "<KP_Enter>"):
            root.bind(key, lambda _e: self._ask_password())
        root.update_idletasks()
        x = (root.winfo_screenwidth() - root.winfo_reqwidth()) // 2
        y = (root.winfo_screenheight() - root.winfo_reqheight()) // 3
        root.geometry(f"+{x}+{y}")
        track_input(root)
        self.user_entry.focus_set()

    def show_tip(self) -> TipDialog:
        """每日提示 over the login; the login ignores input until it is closed."""

        def closed() -> None:
            self.tip = None
            self._return_focus(self.root)()
            self.user_entry.focus_set()

        self.tip = TipDialog(self.root, closed)
        self._open(self.tip, session=False)
        return self.tip

    def _login_busy(self) -> bool:
        return self.main is not None or bool(self._modals)

    def _ask_password(self) -> None:
        if self._login_busy():
            return
        self._user = self.user_entry.get()
        dialog = EntryDialog(
            self.root,
            "",
            "密码:",
            on_submit=self._check_password,
            on_cancel=self._return_focus(self.root),
            show="*",
        )
        self._open(dialog, session=False)

    def _check_password(self, password: str) -> None:
        def run(_roll: Roll) -> None:
            if self._user != self.settings.user or password != self.settings.password:
                self.user_entry.delete(0, tk.END)
                self._message("登录失败", MSG_BAD_LOGIN, self._return_focus(self.root), icon="✖")
                return
            self.state.log_in(self._user)
            self.root.withdraw()
            self.main = MainWindow(self)
            self._open(self.main, modal=False)
            self._take_focus_when_mapped(self.main)

        self._action(run, needs_session=False)

    def logout(self) -> None:
        """注销, the idle timeout, the session_expiry fault: back to 用户登录."""
        for held in self._held:
            held.finish()
        self._held.clear()
        for window in list(self._session_windows):
            if window.winfo_exists():
                window.destroy()
        self._session_windows.clear()
        self._modals = [m for m in self._modals if m.winfo_exists()]
        self.main = None
        self.state.log_out()
        self.user_entry.delete(0, tk.END)
        self.root.deiconify()
        self.user_entry.focus_set()

    def quit(self) -> None:
        self.quit_requested = True
        self.root.quit()

    def close(self) -> None:
        """At exit: nothing stays half written and open."""
        for held in self._held:
            held.finish()
        self._held.clear()
        self.titles.close()

    # -- idle ----------------------------------------------------------------------------

    def touch(self) -> None:
        self._last_input = time.monotonic()

    def poll(self) -> None:
        """Every POLL_MS: the idle logout (and a chance for Python's signal handlers)."""
        idle = time.monotonic() - self._last_input
        if self.main is not None and idle >= self.settings.idle_timeout:
            self.logout()
        if not self.quit_requested:
            self.root.after(POLL_MS, self.poll)

    # -- actions -------------------------------------------------------------------------

    def _action(self, run: Callable[[Roll], None], *, needs_session: bool = True) -> None:
        """One synchronous database call: faults drawn, latency slept here, on Tk's thread."""
        roll = self.faults.begin()
        self._actions += 1
        if roll.error:
            self._message("错误", MSG_DB_ERROR, self._return_focus(self.main), icon="✖")
        elif needs_session and self.faults.expire_session(roll):
            self.logout()
            return
        else:
            run(roll)
        self.touch()  # the clock starts after the call returns, as the client saw it
        if self._actions % NOTICE_EVERY == 0 or self.faults.hit(roll, FOCUS_STEAL):
            self._system_message()

    def _system_message(self) -> None:
        previous = self.root.focus_get()
        owner = self.main if self.main is not None else self.root

        def back() -> None:
            if previous is not None and previous.winfo_exists():
                self._return_focus(previous.winfo_toplevel())()  # type: ignore[arg-type]

        notice = MessageDialog(owner, "系统消息", MSG_MAINTENANCE, back, icon="⚠")
        self._open(notice, modal=False, session=self.main is not None)
        self._take_focus_when_mapped(notice)

    def _matching(self, tab: ReportTab) -> list[Row] | None:
        """The tab's query: reports dated within its range (None: a bad date)."""
        bounds: list[dt.date] = []
        for entry, default in ((tab.start, dt.date.min), (tab.end, dt.date.max)):
            text = entry.get().strip()
            if not text:
                bounds.append(default)
                continue
            try:
                if len(text) != 10:
                    raise ValueError(text)
                bounds.append(dt.date.fromisoformat(text))
            except ValueError:
                return None
        start, end = bounds
        reports = sorted(
            (
                r
                for r in self.state.catalogue.all()
                if start <= r.date <= end
                and (r.kind is VOUCHER or not getattr(tab, "only_pending", False))
            ),
            key=lambda r: (r.date, r.id),
        )
        return [list_row(self.state.catalogue, r) for r in reports]

    def query(self) -> None:
        assert self.main is not None
        tab = self.main.tab()
        tab.clear()
        tab.update_idletasks()  # the blank grid shows during the call

        def run(_roll: Roll) -> None:
            rows = self._matching(tab)
            if rows is None:
                tab.show(tab.rows, tab.page)
                self._message("提示", MSG_BAD_DATE, self._return_focus(self.main))
                return
            tab.show(rows, 1)

        self._action(run)

    def turn_page(self, page: int) -> None:
        assert self.main is not None
        tab = self.main.tab()
        if not 1 <= page <= tab.pages or page == tab.page:
            return
        tab.clear()
        tab.update_idletasks()

        def run(_roll: Roll) -> None:
            tab.show(tab.rows, page)
            children = tab.tree.get_children()
            if children:
                tab.tree.focus(children[0])

        self._action(run)

    def focus_dates(self) -> None:
        if self.main is not None:
            self.main.tab().focus_dates()

    def locate(self) -> None:
        assert self.main is not None
        tab = self.main.tab()

        def find(report_id: str) -> None:
            report_id = report_id.strip()

            def run(_roll: Roll) -> None:
                index = next((i for i, row in enumerate(tab.rows) if row[0] == report_id), None)
                if index is None:
                    self._message("提示", f"未找到报表 {report_id}", self._return_focus(self.main))
                    return
                tab.show(tab.rows, index // 50 + 1)
                self._return_focus(self.main)()
                tab.select(report_id)

            self._action(run)

        dialog = EntryDialog(
            self.main, "定位报表", "报表编号:", find, on_cancel=self._return_focus(self.main)
        )
        self._open(dialog)

    # -- exports ---------------------------------------------------------------------------

    def export_list(self) -> None:
        assert self.main is not None
        tab = self.main.tab()

        def chosen(all_rows: bool, open_after: bool) -> None:
            def rows() -> tuple[list[Row], None]:
                return (list(tab.rows) if all_rows else tab.selected_rows()), None

            self._save_as(LIST_FILENAME, "csv", None, rows, open_after)

        self._open(ExportOptionsDialog(self.main, True, chosen))

    def export_report(self) -> None:
        assert self.main is not None
        report_id = self.main.tab().current_id()
        report = self.state.catalogue.get(report_id) if report_id else None
        if report is None:
            self._message("提示", MSG_PICK_REPORT, self._return_focus(self.main))
            return

        def options() -> None:
            if self.main is None:
                return  # logged out while it was generating

            def chosen(_all_rows: bool, open_after: bool) -> None:
                self._save_as(report.filename, report.kind.ext, report, None, open_after)

            self._open(ExportOptionsDialog(self.main, False, chosen))  # type: ignore[arg-type]

        if self.state.generated(report):
            options()
            return
        self.state.jobs.start(report.id)  # a second Ctrl+E joins the running job
        remaining = self.state.jobs.remaining(report.id)
        self._open(ProgressDialog(self.main, report.title, remaining, options))

    def _save_as(
        self,
        suggested: str,
        ext: str,
        report: Report | None,
        list_rows: Callable[[], tuple[list[Row], None]] | None,
        open_after: bool,
    ) -> None:
        assert self.main is not None
        main = self.main

        def save(text: str) -> bool:
            path = resolve(text, ext)
            if not path.parent.is_dir():
                self._message("保存失败", MSG_NO_FOLDER, self._refocus(dialog), icon="✖")
                return False
            if path.is_dir():
                self._message("保存失败", "文件名无效", self._refocus(dialog), icon="✖")
                return False
            # once the dialog is gone: the call blocks with 另存为 already closed
            self.root.after_idle(lambda: self._action(lambda roll: write(path, roll)))
            return True

        def write(path: Path, roll: Roll) -> None:
            if report is not None:
                data = self.state.catalogue.content(report)
                count = record_count(self.state.catalogue, report, data)
                cut = self.faults.hit(roll, TRUNCATE, report.id)
            else:
                assert list_rows is not None
                rows, _ = list_rows()
                data, count, cut = list_csv(rows), len(rows), False
            held = HeldExport(self.state, path, data, report.id if report else None, cut)
            try:
                held.start()
            except OSError as error:
                self._message("保存失败", error.strerror or str(error), icon="✖")
                return
            self._held.append(held)

            def dismissed() -> None:
                held.finish()
                if held in self._held:
                    self._held.remove(held)
                self._return_focus(main)()
                if open_after:
                    self._view(path, data)

            self._message("提示", f"已保存 {count} 条记录。", dismissed)

        dialog = SaveAsDialog(main, suggested, ext, save, self._return_focus(main))
        self._open(dialog)

    def _refocus(self, dialog: SaveAsDialog) -> Callable[[], None]:
        def back() -> None:
            if dialog.winfo_exists():
                dialog.focus_force()
                dialog.entry.focus_set()

        return back

    def _view(self, path: Path, data: bytes) -> None:
        if path.suffix.lower() == ".csv":
            text = data.decode("gbk", errors="replace")
        else:
            text = f"{path}\n\n（二进制文件，{len(data):,} 字节，无法在此预览。）"
        viewer = ViewerWindow(self.main or self.root, path.name, text)
        self._open(viewer, modal=False)
        self._take_focus_when_mapped(viewer)
