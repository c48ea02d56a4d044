#!/usr/bin/python3
"""A real Modbus TCP server (Debian's pymodbus) for the connector tests.

    /usr/bin/python3 modbus_server.py PORT

Unit 1:  holding 0      counter, +1 every 100 ms (uint16, wraps)
         holding 1      int16 -125 (a scaled temperature: -12.5 at scale 0.1)
         holding 2-3    float32 -2750.0, most significant word first
         holding 4-5    float32 -2750.0, least significant word first
         holding 6-7    int32 -100000, most significant word first
         holding 10-11  float32 -2750.0, words in order, the bytes of each word swapped
         input 0        uint16 1234
         coils 0-2      1 0 1;  discrete 0  1
Unit 2:  holding 0      uint16 7
         holding 1-4    float64 -0.1, most significant word first
         input 0        uint16 42
"""
import asyncio
import struct
import sys

from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.server import StartAsyncTcpServer


def words(fmt, value):
    raw = struct.pack(">" + fmt, value)
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def swapped(ws):
    return [((w & 0xFF) << 8) | (w >> 8) for w in ws]


def unit1():
    hr = [0] * 32
    hr[1] = words("h", -125)[0]
    hr[2:4] = words("f", -2750.0)
    hr[4:6] = list(reversed(words("f", -2750.0)))
    hr[6:8] = words("i", -100000)
    hr[10:12] = swapped(words("f", -2750.0))
    ir = [0] * 8
    ir[0] = 1234
    return ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(0, hr), ir=ModbusSequentialDataBlock(0, ir),
        co=ModbusSequentialDataBlock(0, [1, 0, 1] + [0] * 13),
        di=ModbusSequentialDataBlock(0, [1] + [0] * 15), zero_mode=True)


def unit2():
    hr = [0] * 16
    hr[0] = 7
    hr[1:5] = words("d", -0.1)
    ir = [0] * 8
    ir[0] = 42
    return ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(0, hr), ir=ModbusSequentialDataBlock(0, ir),
        co=ModbusSequentialDataBlock(0, [0] * 16), di=ModbusSequentialDataBlock(0, [0] * 16),
        zero_mode=True)


async def count(context):
    n = 0
    while True:
        await asyncio.sleep(0.1)
        n = (n + 1) & 0xFFFF
        context[1].setValues(3, 0, [n])


async def main(port):
    context = ModbusServerContext(slaves={1: unit1(), 2: unit2()}, single=False)
    asyncio.get_running_loop().create_task(count(context))
    await StartAsyncTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
