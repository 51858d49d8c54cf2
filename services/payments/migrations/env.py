from payplane_core.migrations import run_env

from payments.models import Base

run_env(Base.metadata)
