from services.features.main import main

main()
