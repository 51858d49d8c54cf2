from payments.models import Base
from payplane_core.migrations import run_env

run_env(Base.metadata)
