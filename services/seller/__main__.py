from services.seller.main import main

main()
