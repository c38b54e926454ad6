"""A small Tk client for the desktop driver's tests: the kinds of windows a 2005 client
shows, and a state file (JSON, replaced whole) that says what reached it.

    python tests/fakes/tkclient.py STATE_FILE ICON_PNG

Windows: `测试客户端` (the main window: an entry, a label echoing it, an icon button);
Ctrl+D opens an untitled dialog (one masked entry; Enter keeps its text and closes it);
Ctrl+S opens `另存为` (a name entry holding the suggested name, selected; Ctrl+A selects
all, Ctrl+C copies; an Enter less than 0.5 s after a keystroke only closes the
completion list, as the simulator's does); saving writes half of the file, keeps it
open, and shows `提示` "已保存 3 条记录。"; once that is dismissed it writes the rest
slowly and closes the file. Ctrl+M opens `系统消息`, which takes the focus. Alt+F
posts the 文件(F) menu, whose 标记(M) sets `menu` in the state.
Started as a script (no package imports): it must start fast.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tkinter as tk

MAIN_TITLE = "测试客户端"
SUGGESTED = "报表 2024-01.csv"
CONTENT = (
    "报表编号,报表名称\n" + "".join(f"R{i:04d},月度财务报表 {i}\n" for i in range(400))
).encode("gbk")
SWALLOW = 0.5  # seconds: an Enter sooner than this after a keystroke only closes the list


class Client:
    def __init__(self, state_file: str, icon: str) -> None:
        self.state_file = state_file
        self.state: dict[str, object] = {"entry": "", "clicked": 0, "secret": None, "saved": []}
        self.root = tk.Tk()
        self.root.title(MAIN_TITLE)
        self.root.geometry("600x400+40+40")
        menubar = tk.Menu(self.root)
        files = tk.Menu(menubar, tearoff=False)
        files.add_command(label="标记(M)", underline=3, command=self.marked)
        menubar.add_cascade(label="文件(F)", underline=3, menu=files)
        self.root.configure(menu=menubar)
        self.entry = tk.Entry(self.root, width=40)
        self.entry.pack(pady=10)
        self.entry.bind("<KeyRelease>", self.echo)
        self.echoed = tk.Label(self.root, text="")
        self.echoed.pack()
        self.icon = tk.PhotoImage(file=icon)
        tk.Button(self.root, image=self.icon, command=self.clicked).pack(pady=40)
        self.root.bind_all("<Control-d>", self.untitled)
        self.root.bind_all("<Control-s>", self.save_as)
        self.root.bind_all("<Control-m>", self.notice)
        self.entry.focus_set()
        self.write()

    def write(self) -> None:
        part = self.state_file + ".part"
        with open(part, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, ensure_ascii=False)
        os.replace(part, self.state_file)

    def echo(self, _event: object = None) -> None:
        text = self.entry.get()
        self.echoed.configure(text=text)
        self.state["entry"] = text
        self.write()

    def marked(self) -> None:
        self.state["menu"] = True
        self.write()

    def clicked(self) -> None:
        self.state["clicked"] = int(self.state["clicked"]) + 1  # type: ignore[call-overload]
        self.write()

    def untitled(self, _event: object = None) -> str:
        dialog = tk.Toplevel(self.root)
        dialog.title("")
        dialog.geometry("300x100+100+100")
        field = tk.Entry(dialog, show="*")
        field.pack(pady=20)

        def done(_event: object = None) -> None:
            self.state["secret"] = field.get()
            self.write()
            dialog.destroy()

        field.bind("<Return>", done)
        field.focus_set()
        return "break"

    def notice(self, _event: object = None) -> str:
        popup = tk.Toplevel(self.root)
        popup.title("系统消息")
        popup.geometry("300x100+200+200")
        tk.Label(popup, text="系统将于今晚22:00进行维护").pack(pady=20)
        popup.protocol("WM_DELETE_WINDOW", popup.destroy)
        popup.bind("<Return>", lambda _e: popup.destroy())
        popup.after(50, popup.focus_force)
        return "break"

    def save_as(self, _event: object = None) -> str:
        dialog = tk.Toplevel(self.root)
        dialog.title("另存为")
        dialog.geometry("400x100+120+120")
        tk.Label(dialog, text="文件名:").pack(side="left")
        name = tk.Entry(dialog, width=40)
        name.pack(side="left")
        name.insert(0, SUGGESTED)
        name.select_range(0, "end")
        name.icursor("end")
        last_key = [0.0]

        def keystroke(event: tk.Event) -> None:
            if event.keysym not in ("Return", "Control_L", "Control_R"):
                last_key[0] = time.monotonic()

        def select_all(_event: object = None) -> str:
            name.select_range(0, "end")
            return "break"

        def copy(_event: object = None) -> str:
            self.root.clipboard_clear()
            self.root.clipboard_append(name.get())
            return "break"

        def enter(_event: object = None) -> str:
            if time.monotonic() - last_key[0] < SWALLOW:
                return "break"  # closes the completion list, nothing else
            self.save(dialog, name.get())
            return "break"

        name.bind("<KeyPress>", keystroke, add="+")
        name.bind("<Control-a>", select_all)
        name.bind("<Control-c>", copy)
        name.bind("<Return>", enter)
        name.focus_set()
        return "break"

    def save(self, dialog: tk.Toplevel, path: str) -> None:
        dialog.destroy()
        handle = open(path, "wb")  # noqa: SIM115 - kept open across the message, on purpose
        half = len(CONTENT) // 2
        handle.write(CONTENT[:half])
        handle.flush()
        message = tk.Toplevel(self.root)
        message.title("提示")
        message.geometry("250x80+150+150")
        tk.Label(message, text="已保存 3 条记录。").pack(pady=20)
        rest = [CONTENT[half + i : half + i + 2000] for i in range(0, len(CONTENT) - half, 2000)]

        def finish(_event: object = None) -> None:
            message.destroy()
            drip()

        def drip() -> None:
            if rest:
                handle.write(rest.pop(0))
                handle.flush()
                self.root.after(150, drip)
            else:
                handle.close()
                saved = list(self.state["saved"])  # type: ignore[call-overload]
                self.state["saved"] = [*saved, path]
                self.write()

        message.protocol("WM_DELETE_WINDOW", finish)
        message.bind("<Return>", finish)
        message.bind("<Escape>", finish)


if __name__ == "__main__":
    Client(sys.argv[1], sys.argv[2]).root.mainloop()
