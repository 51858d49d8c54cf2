from payplane_core.migrations import run_env

from merchants.models import Base

run_env(Base.metadata)
