"""Custom ops that misbehave at run time, for tests/test_hostile_runtime.py and tests/test_isolation.py.

Each test copies this file next to its spec (as myops.py or evil.py) and names one class.
"""
import os
import sys
import time

import numpy as np


class Base:
    def forward(self, x):
        return 3 * x

    def vjp(self, g, out, x):
        return (3 * g,)


class Wrong(Base):
    def vjp(self, g, out, x):
        return (2 * g,)


class Hoards(Base):
    def forward(self, x):
        hoard = [np.ones(25_000_000) for _ in range(100)]   # 20 GB, 200 MB at a time
        return 3 * x + len(hoard)


class Sleeps(Base):
    def forward(self, x):
        time.sleep(1000)


class Loops(Base):
    def forward(self, x):
        while True:
            pass


class ExitsInVjp(Base):
    def vjp(self, g, out, x):
        os._exit(0)


class SysExit(Base):
    def forward(self, x):
        sys.exit(0)


class Odd(BaseException):
    pass


class RaisesOdd(Base):
    def forward(self, x):
        raise Odd("odd")


class RaisesGeneratorExit(Base):
    def vjp(self, g, out, x):
        raise GeneratorExit


class RaisesKeyboardInterrupt(Base):
    def forward(self, x):
        raise KeyboardInterrupt


class Prints(Base):
    def forward(self, x):
        print("\x1b[2J hello from the op")
        return 3 * x
