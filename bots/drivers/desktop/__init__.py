"""The desktop driver: legacy clients' windows on an X display, through the keyboard,
the clipboard and pictures of the screen (pyautogui, python-xlib, OpenCV).

Only ``schema`` and ``checks`` load with a recipe; the rest (and pyautogui, Xlib, cv2,
Pillow) load when a desktop session opens.
"""
