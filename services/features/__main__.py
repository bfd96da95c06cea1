from services.runner import run_worker
from services.features.main import FeaturesWorker

run_worker(FeaturesWorker)
