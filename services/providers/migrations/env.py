from payplane_core.migrations import run_env
from providers.models import Base

run_env(Base.metadata)
