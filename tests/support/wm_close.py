"""Closes the app's window the way a window manager's close button does: a WM_DELETE_WINDOW
client message to every top-level window titled "Countersign" on $DISPLAY (the tests' Xvfb has
no window manager). Exit code 1 if there was no such window. Needs Debian's python3-xlib."""
import sys

import Xlib.error
from Xlib import X, display, protocol

TITLE = sys.argv[1] if len(sys.argv) > 1 else "Countersign"


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
    event = protocol.event.ClientMessage(window=w, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
    w.send_event(event, event_mask=X.NoEventMask)
    closed += 1
d.flush()
print(f"asked {closed} window(s) to close")
sys.exit(0 if closed else 1)
