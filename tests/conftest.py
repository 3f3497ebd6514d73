"""Session-wide test set-up.

Ctrl-C tests send SIGINT to the harness (to this process or to a child) as a terminal does to
its foreground job. A test run started as a background job of a non-interactive shell
(``bash .ci/run &``, ``nohup ... &``) inherits SIGINT *ignored*: Python then installs no
KeyboardInterrupt handler, and every child inherits the ignored disposition across exec, so
those tests would fail for a reason that is not the harness's. Python's own handler is put
back here, before any test starts; exec resets it to the default in every child.
"""

from __future__ import annotations

import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
