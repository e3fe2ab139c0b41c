"""Several Modbus units behind one endpoint (a gateway) share one connection; a unit that never answers is named
in its health and does not take its neighbours' connection down."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from mes_bridge.collectors.runner import Collector
from mes_bridge.forwarder import RecordingSink
from mes_bridge.plc_config import load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator
from mes_bridge.spool import Spool

from .conftest import free_port, modbus_yaml, parts, wait_until

FAST = {"modbus": {"backoff_base_s": 0.05, "backoff_cap_s": 0.2, "timeout_s": 0.3}}


class Gateway:
    """A Modbus TCP gateway in front of the simulator whose unit ``dead`` is switched off: requests for it are
    swallowed (no answer, as from a device that lost power behind a real gateway), the rest pass both ways."""

    def __init__(self, target_port: int, dead: int) -> None:
        self.target_port, self.dead = target_port, dead
        self.port = free_port()
        self.swallowed = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        back = asyncio.create_task(self._pipe(up_reader, writer))
        self._tasks.add(back)
        try:
            while True:
                header = await reader.readexactly(7)  # MBAP: transaction, protocol, length, unit id
                body = await reader.readexactly(int.from_bytes(header[4:6], "big") - 1)
                if header[6] == self.dead:
                    self.swallowed += 1
                    continue
                up_writer.write(header + body)
                await up_writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            back.cancel()
            up_writer.close()
            writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()


async def test_a_silent_unit_behind_a_gateway_does_not_stop_its_neighbours(machine_dir: Path, tmp_path: Path) -> None:
    sim_port = free_port()
    for name, unit in (("PRESS-G1", 1), ("PRESS-G2", 2), ("DEAD-G7", 7)):
        text = modbus_yaml(name, sim_port).replace("device_id: 1\n", f"device_id: {unit}\n")
        (machine_dir / f"{name}.yaml").write_text(text)
    served = load_configs(machine_dir)
    sim = ModbusSimulator(served)
    gateway = Gateway(sim_port, dead=7)
    # the collector talks to the gateway
    configs = [c.model_copy(update={"endpoint": f"tcp://127.0.0.1:{gateway.port}"}) for c in served]
    sink, spool = RecordingSink(), Spool(tmp_path / "spool.db")
    collector = Collector(configs, spool, sink, client_options=FAST)
    await sim.start(produce=False)
    await gateway.start()
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        for name in ("PRESS-G1", "PRESS-G2"):
            await wait_until(lambda n=name: collector.sessions[n].state is not None,  # type: ignore[misc]
                             what=f"{name} baseline")
        for _ in range(10):
            sim.machine("PRESS-G1").produce("good")
        for _ in range(5):
            sim.machine("PRESS-G2").produce("good")
        await wait_until(lambda: parts(sink.events()) == 15, what=f"15 parts in the sink (has {parts(sink.events())})")
        await wait_until(lambda: collector.metrics.health()["machines"]["DEAD-G7"]["error"] is not None,
                         what="the silent unit named in its health")
        health = collector.metrics.health()["machines"]
        assert "unit 7" in health["DEAD-G7"]["error"] and "does not answer" in health["DEAD-G7"]["error"]
        assert health["DEAD-G7"]["connected"] is False
        assert health["PRESS-G1"]["connected"] and health["PRESS-G2"]["connected"]
        for name in ("PRESS-G1", "PRESS-G2"):
            assert "disconnected" not in [r["kind"] for r in health[name]["records"]], health[name]["records"]
        assert gateway.swallowed >= 1
    finally:
        stop.set()
        await task
        await gateway.stop()
        await sim.stop()
        spool.close()
        sink.close()
