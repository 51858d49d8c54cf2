from payplane_core.migrations import run_env
from webhooks.models import Base

run_env(Base.metadata)
