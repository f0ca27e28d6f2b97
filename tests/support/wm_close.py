"""Closes the app's window the way a window manager's close button does: a WM_DELETE_WINDOW
client message to every top-level window titled "Countersign" on $DISPLAY (the tests' Xvfb has
no window manager). Exit code 1 if there was no such window. With --list, only says whether
there is one (exit code 0) or not (1). Needs Debian's python3-xlib."""
import sys

import Xlib.error
from Xlib import X, display, protocol

LIST = "--list" in sys.argv[1:]
TITLE = "Countersign"


def windows(d, w):
    """Every window under w; one that goes away while being walked (a popup, a tooltip) is
    skipped."""
    yield w
    try:
        children = w.query_tree().children
    except Xlib.error.XError:
        return
    for child in children:
        yield from windows(d, child)


d = display.Display()
protocols = d.intern_atom("WM_PROTOCOLS")
delete = d.intern_atom("WM_DELETE_WINDOW")
closed = 0
for w in windows(d, d.screen().root):
    try:
        name = w.get_wm_name()
        if name != TITLE or delete not in (w.get_wm_protocols() or []):
            continue
    except Exception:  # a window that went away meanwhile
        continue
    closed += 1
    if LIST:
        continue
    event = protocol.event.ClientMessage(window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
    w.send_event(event, event_mask=X.NoEventMask)
d.flush()
print(f"{'found' if LIST else 'asked'} {closed} window(s){'' if LIST else ' to close'}")
sys.exit(0 if closed else 1)
