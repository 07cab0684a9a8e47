#!/usr/bin/env python3
"""Closes an X11 window the way its close button does: a WM_DELETE_WINDOW message to the app.

    bench/close-window.py "CallBridge Settings"

The benchmark uses it to close the desktop app's settings window under Xvfb, where no window manager
runs (so `wmctrl -c` has no one to ask) and destroying the window (`xdotool windowclose`) is not what a
user does. Talks to libX11 through ctypes: no package beyond python3 and libx11 (which GTK brings).
Exits 1 if no window has that exact title on $DISPLAY.
"""
import ctypes
import ctypes.util
import sys

x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
Window = ctypes.c_ulong
x11.XOpenDisplay.restype = ctypes.c_void_p
x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
x11.XDefaultRootWindow.restype = Window
x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x11.XInternAtom.restype = ctypes.c_ulong
x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x11.XQueryTree.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(Window), ctypes.POINTER(Window),
                           ctypes.POINTER(ctypes.POINTER(Window)), ctypes.POINTER(ctypes.c_uint)]
x11.XFetchName.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(ctypes.c_char_p)]
x11.XFree.argtypes = [ctypes.c_void_p]
x11.XSendEvent.argtypes = [ctypes.c_void_p, Window, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x11.XFlush.argtypes = [ctypes.c_void_p]
x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]

# Windows come and go while the tree is walked (GTK creates and destroys helper windows); Xlib's
# default handler exits the process on the BadWindow error that a vanished window gives. Ignore those.
ErrorHandler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
ignore_errors = ErrorHandler(lambda display, error: 0)
x11.XSetErrorHandler.argtypes = [ErrorHandler]
x11.XSetErrorHandler.restype = ctypes.c_void_p
x11.XSetErrorHandler(ignore_errors)


class ClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", Window), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class Event(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]


def windows(display, window):
    """The window and all windows under it."""
    yield window
    root, parent = Window(), Window()
    children, count = ctypes.POINTER(Window)(), ctypes.c_uint()
    if x11.XQueryTree(display, window, ctypes.byref(root), ctypes.byref(parent), ctypes.byref(children), ctypes.byref(count)):
        found = [children[i] for i in range(count.value)]
        if children:
            x11.XFree(children)
        for child in found:
            yield from windows(display, child)


def title(display, window):
    name = ctypes.c_char_p()
    if x11.XFetchName(display, window, ctypes.byref(name)) and name.value is not None:
        text = name.value.decode("utf-8", "replace")
        x11.XFree(name)
        return text
    return None


def main():
    wanted = sys.argv[1]
    display = x11.XOpenDisplay(None)
    if not display:
        sys.exit("close-window: cannot open the X display (is DISPLAY set?)")
    protocols = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
    delete = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
    closed = 0
    for window in windows(display, x11.XDefaultRootWindow(display)):
        if title(display, window) == wanted:
            event = Event()
            event.xclient.type = 33  # ClientMessage
            event.xclient.window = window
            event.xclient.message_type = protocols
            event.xclient.format = 32
            event.xclient.data[0] = delete
            x11.XSendEvent(display, window, 0, 0, ctypes.byref(event))
            closed += 1
    x11.XSync(display, 0)
    x11.XCloseDisplay(display)
    if not closed:
        sys.exit(f"close-window: no window titled {wanted!r}")


main()
