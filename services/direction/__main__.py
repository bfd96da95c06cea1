from services.direction.main import main

main()
