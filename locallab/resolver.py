"""The lab's stand-in for the VPC resolver (the VPC range's base address + 2): a DNS server over UDP that knows a few
names and answers every other one with NXDOMAIN.

On AWS the nodes' resolver is the VPC's; pods reach it through CoreDNS (`forward . /etc/resolv.conf`) and the
program's DNS masquerade rule, and the dns-check step resolves an external name through that path. The lab has no
internet, so this server answers that name itself; whatever it answers proves the same path.

Run in a lab namespace: python -m locallab.resolver --listen ADDRESS --answer NAME=IPV4 [--answer ...]
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct

TYPE_A = 1
CLASS_IN = 1
TTL_SECONDS = 30
NXDOMAIN = 3


def parse_question(packet: bytes) -> tuple[str, int, int, int]:
    """(name, type, class, offset just past the question) of a query's first question."""
    labels, offset = [], 12
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, qclass = struct.unpack("!HH", packet[offset + 1:offset + 5])
    return ".".join(labels).lower(), qtype, qclass, offset + 5


def answer(query: bytes, names: dict[str, str]) -> bytes:
    """The response to `query`: an A record for a known name, no records for its other types, NXDOMAIN else."""
    (ident,) = struct.unpack("!H", query[:2])
    recursion_desired = query[2] & 0x01
    name, qtype, qclass, end = parse_question(query)
    question = query[12:end]
    known = name.rstrip(".") in names
    records = b""
    if known and qtype == TYPE_A and qclass == CLASS_IN:
        address = ipaddress.IPv4Address(names[name.rstrip(".")]).packed
        # The answer's name points at the question's (offset 12), as compression allows.
        records = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL_SECONDS, len(address)) + address
    flags = 0x8000 | 0x0400 | (recursion_desired << 8) | 0x0080 | (0 if known else NXDOMAIN)
    header = struct.pack("!HHHHHH", ident, flags, 1, 1 if records else 0, 0, 0)
    return header + question + records


def serve(listen: str, names: dict[str, str], port: int = 53) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((listen, port))
        while True:
            query, peer = sock.recvfrom(4096)
            try:
                sock.sendto(answer(query, names), peer)
            except (IndexError, struct.error, UnicodeError):
                continue    # not a query this server understands: no answer, as for a lost packet
            except OSError:
                # A source outside the VPC (a pod address that was not masqueraded) has no route back: the VPC
                # resolver does not answer those either.
                continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--answer", action="append", default=[], metavar="NAME=IPV4")
    args = parser.parse_args(argv)
    names = dict(item.lower().split("=", 1) for item in args.answer)
    serve(args.listen, names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
