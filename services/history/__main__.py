from services.history.main import main

main()
