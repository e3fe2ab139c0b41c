"""A TCP proxy on 127.0.0.1 for outage tests: put it in front of a real server, then cut the link and restore it.

``cut()`` makes the target really unreachable through the proxy: the listening socket is closed (new connections
are refused, ECONNREFUSED) and every open connection is aborted on both sides (the client sees its socket die
mid-conversation; the server sees its client vanish and rolls back whatever transaction was open). ``restore()``
listens again on the same port. Everything runs on the test's event loop; ``aclose()`` leaves no task behind.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    """Forwards ``127.0.0.1:{port}`` to ``target_host:target_port`` while up."""

    def __init__(self, target_host: str, target_port: int, port: int) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.accepted = 0  # connections accepted and piped to the target
        self.aborted = 0  # open connections killed by ``cut``
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    restore = start

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()
            self.aborted += 1
        await self._drain_tasks()
        if server is not None:
            await server.wait_closed()

    async def aclose(self) -> None:
        await self.cut()

    async def _drain_tasks(self) -> None:
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=2)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            if self._server is None:  # cut while the upstream connection was being opened
                writer.transport.abort()
                up_writer.transport.abort()
                return
            self.accepted += 1
            link = (writer, up_writer)
            self._links.add(link)
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                self._links.discard(link)
                writer.transport.abort()
                up_writer.transport.abort()
        finally:
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One direction ended: end the whole link, as a dead network path would.
            sink.transport.abort()
