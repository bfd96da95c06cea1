from services.features.main import FeaturesWorker
from services.runner import run_worker

run_worker(FeaturesWorker)
