"""Resource sampling for the monitor: CPU% and RAM from /proc, CUDA allocator bytes from torch.

GPU fields are read only when torch has already created a CUDA context, so a
monitor never initializes CUDA by itself (floDl's rule too).
"""

from __future__ import annotations

import sys
from typing import Dict, Optional, Tuple

#: The keys of every sample; a value is None when unavailable.
KEYS = ("cpu_pct", "ram_used", "ram_total", "gpu_pct", "vram_alloc", "vram_total")


class ResourceSampler:
    """CPU% (delta of /proc/stat since the previous sample), RAM (/proc/meminfo) and CUDA bytes."""

    def __init__(self) -> None:
        self._prev = self._cpu_times()

    @staticmethod
    def _cpu_times() -> Optional[Tuple[int, int]]:
        try:
            with open("/proc/stat") as f:
                first = f.readline().split()
        except OSError:
            return None
        if not first or first[0] != "cpu" or len(first) < 5:
            return None
        vals = [int(x) for x in first[1:] if x.isdigit()]
        return sum(vals), vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait

    @staticmethod
    def _meminfo() -> Tuple[Optional[int], Optional[int]]:
        total = avail = None
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        total = int(line.split()[1]) * 1024
                    elif line.startswith("MemAvailable:"):
                        avail = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None, None
        if total is None or avail is None:
            return None, None
        return max(total - avail, 0), total

    def sample(self) -> Dict[str, Optional[float]]:
        """One sample: a dict with every key of :data:`KEYS`."""
        res: Dict[str, Optional[float]] = dict.fromkeys(KEYS)
        cur = self._cpu_times()
        if cur is not None and self._prev is not None:
            d_total = cur[0] - self._prev[0]
            d_idle = cur[1] - self._prev[1]
            if d_total > 0:
                res["cpu_pct"] = max(d_total - d_idle, 0) / d_total * 100.0
        if cur is not None:
            self._prev = cur
        res["ram_used"], res["ram_total"] = self._meminfo()
        torch = sys.modules.get("torch")
        try:
            if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
                dev = torch.cuda.current_device()
                res["vram_alloc"] = int(torch.cuda.memory_reserved(dev))
                res["vram_total"] = int(torch.cuda.get_device_properties(dev).total_memory)
                try:  # needs NVML (pynvml); absent is fine
                    res["gpu_pct"] = float(torch.cuda.utilization(dev))
                except Exception:
                    pass
        except Exception:  # a broken CUDA setup must not break training
            pass
        return res


def vram_spill(res: Dict[str, Optional[float]]) -> int:
    """Bytes reserved beyond the device's memory (floDl's "spill"); 0 when none or unknown."""
    alloc, total = res.get("vram_alloc"), res.get("vram_total")
    if alloc is None or total is None or alloc <= total:
        return 0
    return int(alloc - total)
