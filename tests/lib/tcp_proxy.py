#!/usr/bin/env python3
"""A TCP proxy whose network can be cut, for tests of what a peer does when its link fails.

  tcp_proxy.py LISTEN_HOST:PORT TARGET_HOST:PORT
      Forwards every connection to TARGET. PORT 0 picks a free port. Prints
      "proxy listening on HOST:PORT" once it accepts connections. Signals:
        SIGUSR1  cut: close every connection cleanly (FIN to both sides) and stop
                 listening, so new connections are refused; the port stays bound (not
                 listening), so that no other program takes it before the heal
        SIGUSR2  blackhole: keep every socket open but move no byte either way;
                 new connections are accepted (by the kernel) and then hear nothing,
                 like a link that silently drops every packet
        SIGHUP   heal: listen again, and move the bytes held back by a blackhole
      Each change is logged on stderr with a timestamp. SIGTERM exits.

The blackhole is an emulation in user space: the proxy's kernel still acknowledges
the TCP segments it receives (until its buffers fill), so only a peer that expects
replies (application pings, a read deadline) notices it, which is the point: TCP
keepalive and TCP_USER_TIMEOUT do not see it either.
"""
import asyncio
import signal
import socket
import sys
import time


def log(msg):
    print(f"tcp_proxy {time.monotonic():.3f}: {msg}", file=sys.stderr, flush=True)


def split_addr(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


class Proxy:
    def __init__(self, listen, target):
        self.listen_host, self.listen_port = listen
        self.target = target
        self.server = None
        self.reserved = None  # during a cut: the port, bound but not listening
        self.open = asyncio.Event()  # set: bytes flow; clear: blackhole or cut
        self.open.set()
        self.conns = set()  # (client writer, target writer)

    async def start_listening(self):
        if self.reserved is not None:
            sock, self.reserved = self.reserved, None
            self.server = await asyncio.start_server(self.handle, sock=sock)
        else:
            self.server = await asyncio.start_server(
                self.handle, self.listen_host, self.listen_port, reuse_address=True)
        self.listen_port = self.server.sockets[0].getsockname()[1]

    def reserve_port(self):
        """Binds the port again without listening: connections to it are refused, and
        neither bind(port 0) nor connect() of another program picks a bound port."""
        s = socket.socket(socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.listen_host, self.listen_port))
        except OSError as e:
            log(f"cannot keep port {self.listen_port} bound during the cut: {e}")
            s.close()
            return
        self.reserved = s

    async def pump(self, reader, writer):
        try:
            while True:
                await self.open.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self.open.wait()  # a blackhole holds what was read
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    async def handle(self, creader, cwriter):
        await self.open.wait()  # a blackhole: the connection hears nothing
        try:
            treader, twriter = await asyncio.open_connection(*self.target)
        except OSError as e:
            log(f"cannot reach the target: {e}")
            cwriter.close()
            return
        for w in (cwriter, twriter):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = (cwriter, twriter)
        self.conns.add(pair)
        try:
            await asyncio.gather(self.pump(creader, twriter), self.pump(treader, cwriter))
        finally:
            self.conns.discard(pair)

    async def cut(self):
        log(f"cut: closing {len(self.conns)} connections, refusing new ones")
        self.open.clear()
        if self.server:
            self.server.close()
            self.server = None
            self.reserve_port()
        for cw, tw in list(self.conns):
            for w in (cw, tw):
                w.close()
        self.conns.clear()

    def blackhole(self):
        log(f"blackhole: {len(self.conns)} connections go silent")
        self.open.clear()

    async def heal(self):
        if self.server is None:
            await self.start_listening()
        log("heal")
        self.open.set()


async def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    proxy = Proxy(split_addr(sys.argv[1]), split_addr(sys.argv[2]))
    await proxy.start_listening()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(proxy.cut()))
    loop.add_signal_handler(signal.SIGUSR2, proxy.blackhole)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(proxy.heal()))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"proxy listening on {proxy.listen_host}:{proxy.listen_port}", flush=True)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
