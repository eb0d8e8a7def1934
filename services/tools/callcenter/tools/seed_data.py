"""Fixed demo content: the catalogue, the knowledge base and the name lists the seed draws from."""

from __future__ import annotations

# (product_id, name, category, description, base price in cents, option axes)
PRODUCTS: list[tuple[str, str, str, str, int, dict[str, list[str]]]] = [
    ("PRD-001", "Trail Runner Shoes", "footwear", "Light trail running shoes with a grippy sole.", 12900,
     {"size": ["7", "8", "9", "10", "11", "12"], "color": ["blue", "black"]}),
    ("PRD-002", "Merino Wool Sweater", "apparel", "Soft crew-neck sweater in fine merino wool.", 8900,
     {"size": ["S", "M", "L", "XL"], "color": ["navy", "oatmeal"]}),
    ("PRD-003", "Waterproof Rain Jacket", "outerwear", "Packable 2.5-layer waterproof shell.", 14900,
     {"size": ["S", "M", "L", "XL"], "color": ["red", "green"]}),
    ("PRD-004", "Canvas Backpack 25L", "bags", "Waxed canvas daypack with a laptop sleeve.", 7900,
     {"color": ["tan", "olive", "black"]}),
    ("PRD-005", "Insulated Water Bottle", "accessories", "Keeps drinks cold for 24 hours.", 3200,
     {"capacity": ["500 ml", "750 ml"], "color": ["white", "teal", "black"]}),
    ("PRD-006", "Hiking Socks 3-Pack", "accessories", "Cushioned merino-blend hiking socks.", 2400,
     {"size": ["S", "M", "L"]}),
    ("PRD-007", "Down Puffer Vest", "outerwear", "Warm 650-fill down vest.", 11900,
     {"size": ["S", "M", "L", "XL"], "color": ["black", "orange"]}),
    ("PRD-008", "Enamel Camp Mug", "camping", "Classic enamel mug, 350 ml.", 1600,
     {"color": ["white", "blue"]}),
    ("PRD-009", "Trekking Poles", "camping", "Collapsible aluminium trekking poles (pair).", 6900,
     {"length": ["standard", "long"]}),
    ("PRD-010", "Fleece Hoodie", "apparel", "Midweight recycled fleece hoodie.", 6900,
     {"size": ["S", "M", "L", "XL"], "color": ["grey", "forest"]}),
    ("PRD-011", "Organic Cotton T-Shirt", "apparel", "Everyday tee in organic cotton.", 2900,
     {"size": ["S", "M", "L", "XL"], "color": ["white", "black", "sage"]}),
    ("PRD-012", "Polarized Sunglasses", "accessories", "Polarized lenses with UV400 protection.", 5900,
     {"frame": ["tortoise", "matte black"]}),
]  # fmt: skip

# (article_id, title, category, body)
KB_ARTICLES: list[tuple[str, str, str, str]] = [
    ("KB-001", "Return policy", "returns",
     "You can return most items within 30 days of delivery for a refund to the original payment "
     "method or as store credit on a gift card. Items must be unworn and unwashed, with tags. "
     "Start a return with our assistant or online; we email a prepaid return label. Refunds are "
     "issued within 5 to 7 business days after the return arrives at our warehouse."),
    ("KB-002", "Exchange policy", "returns",
     "Exchanges for a different size or color of the same product are free within 30 days of "
     "delivery. We ship the replacement as soon as the original item is scanned by the carrier. "
     "If the new item costs more or less, we charge or refund the difference."),
    ("KB-003", "Cancelling an order", "orders",
     "An order can be cancelled while it is still pending, usually within an hour or two of "
     "placing it. Once the warehouse starts processing the order it can no longer be cancelled, "
     "but you can return it after delivery. Cancelled orders are refunded in full."),
    ("KB-004", "Shipping times and costs", "shipping",
     "Standard shipping is free on orders over $50 and takes 3 to 5 business days. Express "
     "shipping takes 1 to 2 business days and costs $15. Orders placed before 1 pm Pacific ship "
     "the same business day. We ship with UPS, FedEx and USPS."),
    ("KB-005", "Tracking your order", "shipping",
     "Every shipped order has a tracking number, emailed when the order ships. You can track it "
     "on the carrier's website or ask our assistant for the order status with your order number. "
     "Tracking can take up to 24 hours to show the first scan."),
    ("KB-006", "Changing the shipping address", "orders",
     "The shipping address can be changed until the order ships (while it is pending or "
     "processing). After it ships, ask the carrier to redirect the package or return it to us."),
    ("KB-007", "Refund timing", "payments",
     "Refunds go back to the original payment method. Card refunds take 5 to 10 business days "
     "to appear, PayPal refunds 3 to 5 days, and gift card refunds are immediate."),
    ("KB-008", "Payment methods", "payments",
     "We accept Visa, Mastercard, American Express, Discover, PayPal and Acme gift cards. Your "
     "card is charged when the order ships. We never ask for your full card number by phone."),
    ("KB-009", "Damaged or wrong item", "returns",
     "If an item arrives damaged or is not what you ordered, contact us within 30 days. We send a "
     "replacement at no cost or refund you in full, and you do not pay return shipping."),
    ("KB-010", "Warranty", "products",
     "All Acme Outfitters gear has a one-year warranty against defects in materials and "
     "workmanship. Normal wear and tear and accidental damage are not covered."),
    ("KB-011", "International shipping", "shipping",
     "We ship to Canada, the UK and the EU. International orders take 7 to 14 business days; "
     "duties and taxes are paid on delivery. International returns are at the customer's cost."),
    ("KB-012", "Support hours and callbacks", "support",
     "Our assistant answers 24 hours a day. Human agents are available Monday to Friday, 6 am to "
     "6 pm Pacific. You can ask for a callback at a time that suits you within those hours."),
    ("KB-013", "Size guide", "products",
     "Apparel runs true to size. If you are between sizes, choose the larger size for layering. "
     "Shoes run half a size small; we recommend ordering half a size up."),
    ("KB-014", "Gift cards", "payments",
     "Gift cards never expire and can be used online and by phone. Store credit from returns is "
     "issued as a gift card. Gift cards cannot be exchanged for cash."),
    ("KB-015", "Verifying your identity", "support",
     "To protect your account we verify your identity before sharing or changing order details. "
     "We can verify you by the phone number you call from, by an order number plus the ZIP code "
     "on your account, or by a one-time code we send to your email or phone."),
    ("KB-016", "Price adjustments", "payments",
     "If an item you bought drops in price within 14 days of purchase, we refund the difference. "
     "Ask our assistant or an agent with your order number."),
]  # fmt: skip

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mason", "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Aiden", "Abigail", "Jacob",
    "Ella", "Michael", "Grace", "Daniel", "Chloe", "Henry", "Nora", "Samuel", "Lily", "Owen",
    "Zoe", "Wyatt", "Hannah", "Leo", "Aria", "Julian", "Layla", "Mateo", "Riley", "Ezra",
]  # fmt: skip
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores",
]  # fmt: skip
STREETS = [
    "Main St", "Oak Ave", "Pine St", "Maple Dr", "Cedar Ln", "Elm St", "Lakeview Rd", "Park Ave",
    "Hillcrest Dr", "Sunset Blvd", "River Rd", "Washington St", "Mission St", "Broadway",
]  # fmt: skip
# (city, state, zip)
CITIES = [
    ("San Francisco", "CA", "94110"), ("Oakland", "CA", "94607"), ("Los Angeles", "CA", "90012"),
    ("Seattle", "WA", "98101"), ("Portland", "OR", "97205"), ("Denver", "CO", "80202"),
    ("Austin", "TX", "78701"), ("Chicago", "IL", "60601"), ("New York", "NY", "10001"),
    ("Boston", "MA", "02108"), ("Atlanta", "GA", "30303"), ("Miami", "FL", "33130"),
    ("Phoenix", "AZ", "85004"), ("Minneapolis", "MN", "55401"), ("Salt Lake City", "UT", "84101"),
]  # fmt: skip
CARRIERS = ["UPS", "FedEx", "USPS"]
CARD_BRANDS = ["Visa", "Mastercard", "American Express", "Discover"]
