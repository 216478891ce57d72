"""A loopback TCP relay in front of the gateway that a test can cut, to drop the browser's event stream the
way a network blip does (the browser and the server both see real closed sockets)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class CuttableRelay:
    """Accepts on 127.0.0.1:<ephemeral> and relays every connection to ``target``; :meth:`cut` closes the
    ones open now (new ones are relayed as before)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.accepted = 0
        self._closed = False
        threading.Thread(target=self._accept, name="relay accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
                self.accepted += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._open.discard(s)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self) -> int:
        """Close every relayed connection open now; returns how many sockets were closed."""
        with self._lock:
            socks = list(self._open)
        self._drop(*socks)
        return len(socks)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._listener.close()
        self.cut()


@contextlib.contextmanager
def relay_to(port: int) -> Iterator[CuttableRelay]:
    relay = CuttableRelay(port)
    try:
        yield relay
    finally:
        relay.close()
