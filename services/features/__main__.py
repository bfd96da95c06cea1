from services.features.main import FeaturesWorker
from shared.lifecycle import serve

serve(FeaturesWorker)
