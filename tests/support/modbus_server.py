#!/usr/bin/python3
"""A Modbus TCP server with a known datastore, for the Modbus tests and benchmarks (pymodbus 3.0).

usage: modbus_server.py PORT [HOST]

Addresses are 0-based (zero_mode). Every table has 4000 entries, so address 9000 is illegal.
  holding[i]  = 1000 + i, except:
    0: 1234          1: -5 (int16, 0xFFFB)
    10-11: 123.456 float32, big word order (ABCD)   12-13: the same float32, little word order (CDAB)
    20-21: -100000 int32, big word order            22-23: 3000000000 uint32, big word order
    30: 0x3412 (0x1234 in little byte order)
  input[i]    = 2000 + i, except 0: 4321
  coils[i]    = i % 3 == 0
  discrete[i] = i % 2 == 1
"""
import logging
import struct
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartTcpServer

SIZE = 4000


def words(fmt, value):
    high, low = struct.unpack(">HH", struct.pack(fmt, value))
    return high, low


def holding():
    regs = [1000 + i for i in range(SIZE)]
    regs[0] = 1234
    regs[1] = 0xFFFB
    high, low = words(">f", 123.456)
    regs[10], regs[11] = high, low
    regs[12], regs[13] = low, high
    regs[20], regs[21] = words(">i", -100000)
    regs[22], regs[23] = words(">I", 3000000000)
    regs[30] = 0x3412
    return regs


def main():
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    # Clients that hang up and exception responses are routine here, not worth a line each.
    logging.disable(logging.ERROR)
    inputs = [2000 + i for i in range(SIZE)]
    inputs[0] = 4321
    store = ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(0, holding()),
        ir=ModbusSequentialDataBlock(0, inputs),
        co=ModbusSequentialDataBlock(0, [i % 3 == 0 for i in range(SIZE)]),
        di=ModbusSequentialDataBlock(0, [i % 2 == 1 for i in range(SIZE)]),
        zero_mode=True,
    )
    # single=True: every unit id reaches the same datastore.
    context = ModbusServerContext(slaves=store, single=True)
    print(f"modbus server on {host}:{port}", flush=True)
    StartTcpServer(context=context, address=(host, port))


if __name__ == "__main__":
    main()
