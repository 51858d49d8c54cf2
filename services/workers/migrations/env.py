from payplane_core.migrations import run_env
from workers.notifier.models import Base

run_env(Base.metadata)
