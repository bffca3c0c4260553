"""Scripts run on their `// @schedule` (see `scheduler`): the loop, the cross-process tick
claims and run locks (`ticks`), the history (`fires`)."""

from runtime.schedules.fires import FiresLog
from runtime.schedules.scheduler import Diff, Figures, Fire, Registration, Scheduler

__all__ = ["Diff", "Figures", "Fire", "FiresLog", "Registration", "Scheduler"]
