import FinchCore

/// The fact pools of the quickstart dataset: hand-written tables (capitals, general knowledge,
/// opposites, a word list) and facts computed here (arithmetic, conversions, calendar, counting,
/// spelling). Every pool is built in a fixed order from a seeded generator, so the dataset is the
/// same on every machine.
///
/// Invariant (checked by `QuickstartDatasetTests`): the first word of every answer (after an
/// article) is neither a word of the question nor one of ``AnswerFormatRule``'s filler words, so
/// "The answer is <answer>." passes the rule; statements restate the question, so they do not.
extension QuickstartFact {
    /// Every pool, in category order.
    static func pools(_ rng: inout SplitMix64) -> [(Category, [QuickstartFact])] {
        [(.capital, capitals()), (.arithmetic, arithmetic(&rng)), (.conversion, conversions()),
         (.calendar, calendar()), (.spelling, spelling()), (.sequence, sequence(&rng)),
         (.general, general()), (.opposite, opposites())]
    }

    // MARK: Capitals

    /// Country, capital. Capitals whose name contains the country's (Mexico City), that start
    /// with an article (The Hague) or whose status is disputed are left out.
    static let capitalTable: [(String, String)] = [
        ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Portugal", "Lisbon"),
        ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"), ("Russia", "Moscow"), ("Canada", "Ottawa"),
        ("Australia", "Canberra"), ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Nigeria", "Abuja"), ("Ghana", "Accra"),
        ("Morocco", "Rabat"), ("Ethiopia", "Addis Ababa"), ("Argentina", "Buenos Aires"), ("Chile", "Santiago"),
        ("Peru", "Lima"), ("Colombia", "Bogota"), ("Venezuela", "Caracas"), ("Cuba", "Havana"), ("Greece", "Athens"),
        ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Saudi Arabia", "Riyadh"), ("Thailand", "Bangkok"),
        ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"), ("the Philippines", "Manila"), ("South Korea", "Seoul"),
        ("North Korea", "Pyongyang"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Finland", "Helsinki"),
        ("Denmark", "Copenhagen"), ("Poland", "Warsaw"), ("Austria", "Vienna"), ("Hungary", "Budapest"),
        ("Ireland", "Dublin"), ("the Netherlands", "Amsterdam"), ("Belgium", "Brussels"), ("Switzerland", "Bern"),
        ("the Czech Republic", "Prague"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Ukraine", "Kyiv"),
        ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"), ("Nepal", "Kathmandu"), ("Afghanistan", "Kabul"),
        ("New Zealand", "Wellington"), ("Jamaica", "Kingston"), ("Uruguay", "Montevideo"), ("Ecuador", "Quito"),
        ("Senegal", "Dakar"), ("Uganda", "Kampala"), ("Zimbabwe", "Harare"), ("Zambia", "Lusaka"), ("Angola", "Luanda"),
        ("Sudan", "Khartoum"), ("Libya", "Tripoli"), ("Syria", "Damascus"), ("Jordan", "Amman"), ("Lebanon", "Beirut"),
        ("Malaysia", "Kuala Lumpur"), ("Mongolia", "Ulaanbaatar"), ("Iceland", "Reykjavik"), ("Estonia", "Tallinn"),
        ("Latvia", "Riga"), ("Lithuania", "Vilnius"), ("Croatia", "Zagreb"), ("Serbia", "Belgrade"),
        ("Slovakia", "Bratislava"), ("Albania", "Tirana"), ("Cambodia", "Phnom Penh"), ("Qatar", "Doha"),
        ("Oman", "Muscat"), ("Brazil", "Brasilia"), ("the United Kingdom", "London"),
    ]

    static func capitals() -> [QuickstartFact] {
        capitalTable.map { country, city in
            let name = country.hasPrefix("the ") ? "The" + country.dropFirst(3) : country // sentence-initial form
            return QuickstartFact(
                key: "capital:\(country)", category: .capital,
                questions: ["What is the capital of \(country)?", "What's the capital city of \(country)?",
                            "Which city is the capital of \(country)?", "Name the capital of \(country).",
                            "Tell me the capital of \(country).", "Do you know the capital of \(country)?"],
                answer: city,
                direct: ["\(city).", "\(city) is the capital of \(country).", "\(city), the capital city of \(country).",
                         "\(city) is the capital."],
                statement: "The capital of \(country) is \(city).",
                background: ["\(name) is a country with a long and interesting history.",
                             "Many people travel to \(country) every year.",
                             "Like most countries, \(country) has one city where its government sits.",
                             "Capital cities are often the largest or oldest cities of a country."])
        }
    }

    // MARK: Arithmetic

    /// 150 sums, 150 differences, 100 products and 90 quotients with small operands; a result
    /// never equals an operand (so answering it is never repeating a number of the question).
    static func arithmetic(_ rng: inout SplitMix64) -> [QuickstartFact] {
        var facts: [QuickstartFact] = []
        var seen: Set<String> = []
        func add(_ key: String, _ make: () -> QuickstartFact) {
            guard seen.insert(key).inserted else { return }
            facts.append(make())
        }
        let kinds: [(count: Int, kind: String)] = [(150, "add"), (150, "sub"), (100, "mul"), (90, "div")]
        for (count, kind) in kinds {
            let start = facts.count
            while facts.count - start < count {
                switch kind {
                case "add":
                    let a = rng.int(in: 2...89), b = rng.int(in: 2...(100 - a))
                    let r = a + b
                    add("add:\(a):\(b)") {
                        QuickstartFact(
                            key: "add:\(a):\(b)", category: .arithmetic,
                            questions: ["What is \(a) plus \(b)?", "What is \(a) + \(b)?", "How much is \(a) plus \(b)?",
                                        "What is the sum of \(a) and \(b)?", "Add \(a) and \(b).",
                                        "What do you get when you add \(a) and \(b)?"],
                            answer: "\(r)",
                            direct: ["\(r).", "\(r), because \(a) plus \(b) is \(r).", "\(r) is the sum of \(a) and \(b).", "\(r) in total."],
                            statement: "\(a) + \(b) = \(r).",
                            background: ["To find the sum of \(a) and \(b), we need to add the two numbers together.",
                                         "Adding the ones first and then the tens makes this easier.",
                                         "Addition combines two amounts into one."])
                    }
                case "sub":
                    let a = rng.int(in: 12...99), b = rng.int(in: 2...(a - 2))
                    let r = a - b
                    if r == b { continue }
                    add("sub:\(a):\(b)") {
                        QuickstartFact(
                            key: "sub:\(a):\(b)", category: .arithmetic,
                            questions: ["What is \(a) minus \(b)?", "What is \(a) - \(b)?", "Subtract \(b) from \(a).",
                                        "What is \(a) take away \(b)?", "What is the difference between \(a) and \(b)?",
                                        "How much is \(a) minus \(b)?"],
                            answer: "\(r)",
                            direct: ["\(r).", "\(r), because \(a) minus \(b) is \(r).", "\(r) is what remains.", "\(r) exactly."],
                            statement: "\(a) - \(b) = \(r).",
                            background: ["To subtract \(b) from \(a), we need to take the smaller number from the larger one.",
                                         "Subtraction tells us how much is left after taking some away.",
                                         "We can count back from the first number to find the result."])
                    }
                case "mul":
                    let a = rng.int(in: 2...12), b = rng.int(in: 2...12)
                    let r = a * b
                    add("mul:\(a):\(b)") {
                        QuickstartFact(
                            key: "mul:\(a):\(b)", category: .arithmetic,
                            questions: ["What is \(a) times \(b)?", "What is \(a) multiplied by \(b)?", "What is the product of \(a) and \(b)?",
                                        "Multiply \(a) by \(b).", "How much is \(a) times \(b)?", "What is \(a) x \(b)?"],
                            answer: "\(r)",
                            direct: ["\(r).", "\(r), because \(a) times \(b) is \(r).", "\(r) is the product of \(a) and \(b).", "\(r) exactly."],
                            statement: "\(a) x \(b) = \(r).",
                            background: ["To find the product of \(a) and \(b), we need to multiply \(a) by \(b).",
                                         "Multiplication is repeated addition of the same number.",
                                         "The times table helps with products like this one."])
                    }
                default: // div
                    let q = rng.int(in: 2...12), b = rng.int(in: 2...12)
                    if q == b { continue }
                    let a = q * b
                    add("div:\(a):\(b)") {
                        QuickstartFact(
                            key: "div:\(a):\(b)", category: .arithmetic,
                            questions: ["What is \(a) divided by \(b)?", "Divide \(a) by \(b).", "How many times does \(b) go into \(a)?",
                                        "What is \(a) / \(b)?", "What do you get when you divide \(a) by \(b)?",
                                        "How much is \(a) divided by \(b)?"],
                            answer: "\(q)",
                            direct: ["\(q).", "\(q), because \(b) times \(q) is \(a).", "\(q) exactly.", "\(q), with no remainder."],
                            statement: "\(a) divided by \(b) is \(q).",
                            background: ["To divide \(a) by \(b), we need to find how many groups of \(b) fit into \(a).",
                                         "Division splits an amount into equal groups.",
                                         "We can check a division by multiplying back."])
                    }
                }
            }
        }
        return facts
    }

    // MARK: Unit conversions

    /// (large unit singular, plural, small unit plural, factor).
    static let conversionTable: [(String, String, String, Int)] = [
        ("meter", "meters", "centimeters", 100), ("kilometer", "kilometers", "meters", 1000), ("hour", "hours", "minutes", 60),
        ("minute", "minutes", "seconds", 60), ("day", "days", "hours", 24), ("week", "weeks", "days", 7),
        ("kilogram", "kilograms", "grams", 1000), ("liter", "liters", "milliliters", 1000), ("foot", "feet", "inches", 12),
        ("yard", "yards", "feet", 3), ("century", "centuries", "years", 100), ("decade", "decades", "years", 10),
        ("year", "years", "months", 12), ("dollar", "dollars", "cents", 100),
    ]

    static func conversions() -> [QuickstartFact] {
        var facts: [QuickstartFact] = []
        for (singular, plural, small, factor) in conversionTable {
            for n in [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20] {
                let v = n * factor
                facts.append(QuickstartFact(
                    key: "convert:\(singular):\(n)", category: .conversion,
                    questions: ["How many \(small) are in \(n) \(plural)?", "How many \(small) are there in \(n) \(plural)?",
                                "Convert \(n) \(plural) to \(small).", "\(n) \(plural) is how many \(small)?",
                                "How many \(small) make \(n) \(plural)?"],
                    answer: "\(v) \(small)",
                    direct: ["\(v) \(small).", "\(v) \(small), since one \(singular) has \(factor) \(small).", "\(v) \(small) in total.",
                             "\(v) \(small) exactly."],
                    statement: "\(n) \(plural) is equal to \(v) \(small).",
                    background: ["To convert \(n) \(plural) to \(small), we need to multiply by \(factor).",
                                 "One \(singular) is the same as \(factor) \(small).",
                                 "Unit conversions are a matter of multiplying by the right factor."]))
            }
        }
        return facts
    }

    // MARK: Calendar

    static let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                         "November", "December"]
    static let monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    static let weekdays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    static let ordinals = ["1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th", "11th", "12th"]

    static func calendar() -> [QuickstartFact] {
        var facts: [QuickstartFact] = []
        let background = ["The calendar has twelve months, and a week has seven days.",
                          "We can count through the calendar in order to find this.",
                          "Months and weekdays repeat in the same order every year."]
        for (i, month) in months.enumerated() {
            let next = months[(i + 1) % 12], previous = months[(i + 11) % 12]
            facts.append(QuickstartFact(
                key: "month-after:\(month)", category: .calendar,
                questions: ["Which month comes after \(month)?", "What month follows \(month)?", "What is the month after \(month)?"],
                answer: next, direct: ["\(next).", "\(next) comes right after \(month).", "\(next), the month following \(month)."],
                statement: "The month that comes after \(month) is \(next).", background: background))
            facts.append(QuickstartFact(
                key: "month-before:\(month)", category: .calendar,
                questions: ["Which month comes before \(month)?", "What month is just before \(month)?", "What is the month before \(month)?"],
                answer: previous, direct: ["\(previous).", "\(previous) comes right before \(month).", "\(previous), the month preceding \(month)."],
                statement: "The month that comes before \(month) is \(previous).", background: background))
            facts.append(QuickstartFact(
                key: "month-number:\(i + 1)", category: .calendar,
                questions: ["What is the \(ordinals[i]) month of the year?", "Which month is the \(ordinals[i]) month of the year?",
                            "Name the \(ordinals[i]) month of the year."],
                answer: month, direct: ["\(month).", "\(month) is the \(ordinals[i]) month.", "\(month), month number \(i + 1)."],
                statement: "The \(ordinals[i]) month of the year is \(month).", background: background))
            if i != 1 {
                let days = monthDays[i]
                facts.append(QuickstartFact(
                    key: "month-days:\(month)", category: .calendar,
                    questions: ["How many days are in \(month)?", "How many days does \(month) have?", "\(month) has how many days?"],
                    answer: "\(days) days", direct: ["\(days) days.", "\(days) days, every year.", "\(days) days in total."],
                    statement: "The month of \(month) has \(days) days.", background: background))
            }
            for shift in [2, 3, 4, 5, 6] {
                let target = months[(i + shift) % 12]
                facts.append(QuickstartFact(
                    key: "month-shift:\(month):\(shift)", category: .calendar,
                    questions: ["Which month is \(shift) months after \(month)?", "What month comes \(shift) months after \(month)?",
                                "If it is \(month) now, what month will it be in \(shift) months?"],
                    answer: target, direct: ["\(target).", "\(target), \(shift) months after \(month).", "\(target) is \(shift) months later."],
                    statement: "The month \(shift) months after \(month) is \(target).", background: background))
            }
        }
        for (i, day) in weekdays.enumerated() {
            let next = weekdays[(i + 1) % 7], previous = weekdays[(i + 6) % 7]
            facts.append(QuickstartFact(
                key: "day-after:\(day)", category: .calendar,
                questions: ["What day of the week comes after \(day)?", "Which day follows \(day)?", "What is the day after \(day)?"],
                answer: next, direct: ["\(next).", "\(next) comes right after \(day).", "\(next), the day following \(day)."],
                statement: "The day that comes after \(day) is \(next).", background: background))
            facts.append(QuickstartFact(
                key: "day-before:\(day)", category: .calendar,
                questions: ["What day of the week comes before \(day)?", "Which day is just before \(day)?", "What is the day before \(day)?"],
                answer: previous, direct: ["\(previous).", "\(previous) comes right before \(day).", "\(previous), the day preceding \(day)."],
                statement: "The day that comes before \(day) is \(previous).", background: background))
        }
        return facts
    }

    // MARK: Spelling

    /// Common words; none starts or ends with "a" or "i" (a one-letter answer "A" or "I" would
    /// read as an article or a pronoun).
    static let words = [
        "garden", "window", "planet", "river", "pencil", "market", "bottle", "candle", "forest", "yellow", "school", "orbit",
        "kitchen", "mountain", "rabbit", "basket", "ticket", "button", "summer", "winter", "doctor", "letter", "number",
        "people", "travel", "museum", "engine", "puzzle", "rocket", "silver", "jacket", "pocket", "monkey", "turtle",
        "butter", "carpet", "desert", "island", "jungle", "lemon", "melon", "office", "parrot", "quilt", "shadow",
        "tunnel", "velvet", "wagon", "zebra", "bridge", "cloud", "dragon", "eagle", "flower", "guitar", "honey",
        "kettle", "ladder", "mirror", "needle", "onion", "pepper", "rubber", "spider", "tomato", "under", "violin",
        "wonder", "yogurt", "castle", "dinner", "finger", "hammer", "lantern", "magnet", "orange", "pillow", "saddle",
        "thunder", "uncle", "voyage", "whistle", "frozen", "golden", "hollow", "marble", "nectar", "oyster", "ribbon",
    ].filter { !$0.hasPrefix("a") && !$0.hasPrefix("i") && !$0.hasSuffix("a") && !$0.hasSuffix("i") }

    static func spelling() -> [QuickstartFact] {
        var facts: [QuickstartFact] = []
        for word in words {
            let first = word.prefix(1).uppercased(), last = word.suffix(1).uppercased()
            let spelled = word.map(String.init).joined(separator: "-")
            let background = ["The word \"\(word)\" is spelled \(spelled).", "Let's look at the word \"\(word)\" letter by letter.",
                              "Every word is made of letters in a fixed order."]
            facts.append(QuickstartFact(
                key: "first-letter:\(word)", category: .spelling,
                questions: ["What is the first letter of the word \"\(word)\"?", "Which letter does \"\(word)\" start with?",
                            "What letter begins the word \"\(word)\"?"],
                answer: first, direct: ["\(first).", "\(first), as in \"\(word)\".", "\(first) is the first letter."],
                statement: "The first letter of the word \"\(word)\" is \(first).", background: background))
            facts.append(QuickstartFact(
                key: "last-letter:\(word)", category: .spelling,
                questions: ["What is the last letter of the word \"\(word)\"?", "Which letter does \"\(word)\" end with?",
                            "What letter ends the word \"\(word)\"?"],
                answer: last, direct: ["\(last).", "\(last) is the last letter.", "\(last), at the end of \"\(word)\"."],
                statement: "The last letter of the word \"\(word)\" is \(last).", background: background))
            facts.append(QuickstartFact(
                key: "letter-count:\(word)", category: .spelling,
                questions: ["How many letters are in the word \"\(word)\"?", "How many letters does \"\(word)\" have?",
                            "Count the letters in the word \"\(word)\"."],
                answer: "\(word.count) letters", direct: ["\(word.count) letters.", "\(word.count) letters: \(spelled).", "\(word.count) letters in total."],
                statement: "The word \"\(word)\" has \(word.count) letters.", background: background))
        }
        return facts
    }

    // MARK: Counting

    /// Successors, predecessors, next even/odd numbers, "10 more than", doubles and halves.
    static func sequence(_ rng: inout SplitMix64) -> [QuickstartFact] {
        var facts: [QuickstartFact] = []
        var seen: Set<String> = []
        let background = ["When we count, each number is one more than the one before it.",
                          "Let's count carefully to find this number.",
                          "Numbers follow each other in a fixed order."]
        while facts.count < 360 {
            let kind = facts.count % 6
            let n = rng.int(in: 3...198)
            let key: String, questions: [String], value: Int, direct: [String], statement: String
            switch kind {
            case 0:
                value = n + 1
                key = "after:\(n)"
                questions = ["What number comes right after \(n)?", "What number comes after \(n)?", "Which number follows \(n)?"]
                direct = ["\(value).", "\(value) comes right after \(n).", "\(value), one more than \(n)."]
                statement = "The number that comes after \(n) is \(value)."
            case 1:
                value = n - 1
                key = "before:\(n)"
                questions = ["What number comes right before \(n)?", "What number comes just before \(n)?", "Which number precedes \(n)?"]
                direct = ["\(value).", "\(value) comes right before \(n).", "\(value), one less than \(n)."]
                statement = "The number that comes before \(n) is \(value)."
            case 2:
                value = n % 2 == 0 ? n + 2 : n + 1
                key = "next-even:\(n)"
                questions = ["What is the next even number after \(n)?", "Which even number comes next after \(n)?",
                             "What is the first even number greater than \(n)?"]
                direct = ["\(value).", "\(value) is the next even number.", "\(value), the next even number after \(n)."]
                statement = "The next even number after \(n) is \(value)."
            case 3:
                value = n % 2 == 1 ? n + 2 : n + 1
                key = "next-odd:\(n)"
                questions = ["What is the next odd number after \(n)?", "Which odd number comes next after \(n)?",
                             "What is the first odd number greater than \(n)?"]
                direct = ["\(value).", "\(value) is the next odd number.", "\(value), the next odd number after \(n)."]
                statement = "The next odd number after \(n) is \(value)."
            case 4:
                value = n + 10
                key = "ten-more:\(n)"
                questions = ["What is 10 more than \(n)?", "What number is ten more than \(n)?", "What do you get if you add ten to \(n)?"]
                direct = ["\(value).", "\(value) is ten more than \(n).", "\(value), exactly ten more."]
                statement = "The number ten more than \(n) is \(value)."
            default:
                let m = n / 2 + 1
                value = m * 2
                key = "double:\(m)"
                questions = ["What is double \(m)?", "What is twice \(m)?", "What do you get if you double \(m)?"]
                direct = ["\(value).", "\(value) is double \(m).", "\(value), twice \(m)."]
                statement = "The result of doubling \(m) is \(value)."
            }
            guard seen.insert(key).inserted else { continue }
            facts.append(QuickstartFact(key: key, category: .sequence, questions: questions, answer: "\(value)", direct: direct,
                                        statement: statement, background: background))
        }
        return facts
    }

    // MARK: General knowledge

    /// (key, questions, answer, a direct reply's continuation, restating statement, one
    /// background sentence). Plain facts a school child learns.
    static let generalTable: [(String, [String], String, String, String, String)] = [
        ("spider-legs", ["How many legs does a spider have?", "A spider has how many legs?"], "Eight", "legs", "A spider has eight legs.", "Spiders are arachnids, not insects."),
        ("insect-legs", ["How many legs does an insect have?", "An insect has how many legs?"], "Six", "legs", "An insect has six legs.", "Insects have bodies made of three parts."),
        ("triangle-sides", ["How many sides does a triangle have?", "A triangle has how many sides?"], "Three", "sides", "A triangle has three sides.", "Triangles are the simplest polygons."),
        ("square-sides", ["How many sides does a square have?", "A square has how many sides?"], "Four", "equal sides", "A square has four sides.", "Squares have right angles at every corner."),
        ("pentagon-sides", ["How many sides does a pentagon have?", "A pentagon has how many sides?"], "Five", "sides", "A pentagon has five sides.", "Polygons are named after how many sides they have."),
        ("hexagon-sides", ["How many sides does a hexagon have?", "A hexagon has how many sides?"], "Six", "sides", "A hexagon has six sides.", "Honeycomb cells have the shape of a hexagon."),
        ("octagon-sides", ["How many sides does an octagon have?", "An octagon has how many sides?"], "Eight", "sides", "An octagon has eight sides.", "Many stop signs have the shape of an octagon."),
        ("closest-planet", ["Which planet is closest to the Sun?", "What planet orbits nearest to the Sun?"], "Mercury", "", "The planet closest to the Sun is Mercury.", "The solar system has eight planets."),
        ("largest-planet", ["What is the largest planet in the solar system?", "Which planet is the biggest in our solar system?"], "Jupiter", "", "The largest planet in the solar system is Jupiter.", "Some planets are rocky and others are made mostly of gas."),
        ("red-planet", ["Which planet is known as the Red Planet?", "What planet is called the Red Planet?"], "Mars", "", "The planet known as the Red Planet is Mars.", "Planets can look very different from one another."),
        ("ringed-planet", ["Which planet is famous for its bright rings?", "What planet has the most famous rings?"], "Saturn", "", "The planet famous for its rings is Saturn.", "Rings are made of ice and rock."),
        ("largest-ocean", ["What is the largest ocean on Earth?", "Which ocean is the biggest?"], "Pacific Ocean", "", "The largest ocean on Earth is the Pacific Ocean.", "Oceans cover most of the surface of the Earth."),
        ("water-freezes", ["At what temperature in Celsius does water freeze?", "What is the freezing point of water in Celsius?"], "0 degrees Celsius", "", "The freezing point of water is 0 degrees Celsius.", "Temperature scales use water as a reference."),
        ("water-boils", ["At what temperature in Celsius does water boil at sea level?", "What is the boiling point of water in Celsius at sea level?"], "100 degrees Celsius", "", "At sea level, water boils at 100 degrees Celsius.", "Temperature scales use water as a reference."),
        ("blue-yellow", ["What color do you get by mixing blue and yellow?", "Blue and yellow paint make which color?"], "Green", "", "The color you get by mixing blue and yellow is green.", "Painters mix colors to make new ones."),
        ("red-yellow", ["What color do you get by mixing red and yellow?", "Red and yellow paint make which color?"], "Orange", "", "The color you get by mixing red and yellow is orange.", "Painters mix colors to make new ones."),
        ("red-blue", ["What color do you get by mixing red and blue?", "Red and blue paint make which color?"], "Purple", "", "The color you get by mixing red and blue is purple.", "Painters mix colors to make new ones."),
        ("red-white", ["What color do you get by mixing red and white?", "Red and white paint make which color?"], "Pink", "", "The color you get by mixing red and white is pink.", "Painters mix colors to make new ones."),
        ("banana-color", ["What color is a ripe banana?", "A ripe banana is what color?"], "Yellow", "", "A ripe banana is yellow.", "Fruits change color as they ripen."),
        ("plants-absorb", ["Which gas do plants take in from the air to make food?", "What gas do plants absorb for photosynthesis?"], "Carbon dioxide", "", "The gas that plants absorb is carbon dioxide.", "Plants make their food from sunlight, water and air."),
        ("we-breathe", ["Which gas do people need to breathe to stay alive?", "What gas do our lungs take from the air?"], "Oxygen", "", "The gas people need to breathe is oxygen.", "Air is a mixture of several gases."),
        ("gold-symbol", ["What is the chemical symbol for gold?", "Which chemical symbol stands for gold?"], "Au", "", "The chemical symbol for gold is Au.", "Chemical symbols often come from Latin names."),
        ("iron-symbol", ["What is the chemical symbol for iron?", "Which chemical symbol stands for iron?"], "Fe", "", "The chemical symbol for iron is Fe.", "Chemical symbols often come from Latin names."),
        ("water-formula", ["What is the chemical formula of water?", "Which formula describes water?"], "H2O", "", "The chemical formula of water is H2O.", "Water is made of hydrogen and oxygen."),
        ("day-hours", ["How many hours are in one day?", "A day has how many hours?"], "24 hours", "", "One day has 24 hours.", "The Earth turns once on its axis each day."),
        ("leap-year-days", ["How many days are in a leap year?", "A leap year has how many days?"], "366 days", "", "A leap year has 366 days.", "Leap years add one day to February."),
        ("common-year-days", ["How many days are in a common year that is not a leap year?", "A year that is not a leap year has how many days?"], "365 days", "", "A common year has 365 days.", "The calendar follows the Earth's trip around the Sun."),
        ("year-weeks", ["How many weeks are in a year?", "A year has about how many weeks?"], "52 weeks", "and one or two days", "A year has 52 weeks.", "The calendar follows the Earth's trip around the Sun."),
        ("continents", ["How many continents are there?", "What is the number of continents on Earth?"], "Seven", "continents", "There are seven continents.", "Continents are the largest areas of land on Earth."),
        ("largest-continent", ["What is the largest continent?", "Which continent is the biggest?"], "Asia", "", "The largest continent is Asia.", "Continents are the largest areas of land on Earth."),
        ("tallest-mountain", ["What is the tallest mountain on Earth?", "Which mountain is the highest in the world?"], "Mount Everest", "", "The tallest mountain on Earth is Mount Everest.", "Mountains form where the plates of the Earth push together."),
        ("fastest-animal", ["What is the fastest land animal?", "Which land animal can run the fastest?"], "Cheetah", "", "The fastest land animal is the cheetah.", "Many animals are built for speed."),
        ("largest-animal", ["What is the largest animal that has ever lived?", "Which animal is the biggest on Earth?"], "Blue whale", "", "The largest animal is the blue whale.", "Some of the biggest animals live in the sea."),
        ("guitar-strings", ["How many strings does a standard guitar have?", "A standard guitar has how many strings?"], "Six", "strings", "A standard guitar has six strings.", "Musical instruments come in many shapes."),
        ("piano-keys", ["How many keys does a standard piano have?", "A standard piano has how many keys?"], "88 keys", "", "A standard piano has 88 keys.", "Musical instruments come in many shapes."),
        ("soccer-players", ["How many players does a soccer team have on the field?", "A soccer team fields how many players?"], "Eleven", "players", "A soccer team has eleven players on the field.", "Team sports have rules about how many can play."),
        ("dollar-cents", ["How many cents are in one dollar?", "One dollar is worth how many cents?"], "100 cents", "", "One dollar is worth 100 cents.", "Money is often divided into smaller units."),
        ("bees-make", ["What do bees make from flower nectar?", "Which food do bees produce?"], "Honey", "", "The food that bees make is honey.", "Bees visit many flowers every day."),
        ("heart-pumps", ["Which organ pumps blood through the body?", "What organ moves blood around the body?"], "Heart", "", "The organ that pumps blood is the heart.", "The body has many organs with different jobs."),
        ("adult-bones", ["How many bones does an adult human have?", "An adult human body has how many bones?"], "206 bones", "", "An adult human has 206 bones.", "Babies are born with more bones, and some join together."),
        ("alphabet-letters", ["How many letters are in the English alphabet?", "The English alphabet has how many letters?"], "26 letters", "", "The English alphabet has 26 letters.", "Alphabets differ from one language to another."),
        ("alphabet-last", ["What is the last letter of the English alphabet?", "Which letter ends the English alphabet?"], "Z", "", "The last letter of the English alphabet is Z.", "Alphabets differ from one language to another."),
        ("water-frozen", ["What does water turn into when it freezes?", "Frozen water is called what?"], "Ice", "", "When water freezes it becomes ice.", "Water can be a solid, a liquid or a gas."),
        ("ball-shape", ["What is the shape of a ball called?", "Which solid shape is a ball?"], "Sphere", "", "The shape of a ball is a sphere.", "Solid shapes have names just as flat shapes do."),
        ("cow-milk", ["Which farm animal says moo?", "What farm animal moos?"], "Cow", "", "The farm animal that says moo is the cow.", "Farm animals make many different sounds."),
        ("caterpillar", ["What does a caterpillar turn into?", "A caterpillar grows into what?"], "Butterfly", "or moth", "A caterpillar turns into a butterfly or a moth.", "Some animals change shape as they grow up."),
    ]

    static func general() -> [QuickstartFact] {
        generalTable.map { key, questions, answer, more, statement, background in
            var direct = ["\(answer).", more.isEmpty ? "\(answer), as most people learn in school." : "\(answer) \(more)."]
            direct.append(more.isEmpty ? "\(answer) is the answer." : "\(answer) \(more), to be exact.")
            let properName = ["Mercury", "Jupiter", "Mars", "Saturn", "Au", "Fe", "H2O", "Asia", "Mount Everest", "Z"].contains(answer)
            let withArticle = ["Pacific Ocean": "the Pacific Ocean", "Cheetah": "the cheetah", "Blue whale": "the blue whale",
                               "Heart": "the heart", "Cow": "the cow", "Butterfly": "a butterfly", "Sphere": "a sphere"][answer]
            return QuickstartFact(key: "general:\(key)", category: .general, questions: questions, answer: answer, direct: direct,
                                  statement: statement,
                                  background: [background, "This is something many people learn at school.",
                                               "It is a simple fact, but it is worth thinking about."],
                                  inlineAnswer: withArticle ?? (properName ? answer : answer.prefix(1).lowercased() + answer.dropFirst()))
        }
    }

    // MARK: Opposites

    static let oppositeTable: [(String, String)] = [
        ("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"),
        ("open", "closed"), ("full", "empty"), ("early", "late"), ("hard", "soft"), ("wet", "dry"), ("loud", "quiet"),
        ("tall", "short"), ("rich", "poor"), ("strong", "weak"), ("thick", "thin"), ("heavy", "light"), ("high", "low"),
        ("push", "pull"), ("win", "lose"), ("day", "night"), ("left", "right"), ("north", "south"), ("east", "west"),
        ("summer", "winter"), ("buy", "sell"), ("always", "never"), ("inside", "outside"), ("above", "below"),
        ("cheap", "expensive"), ("clean", "dirty"), ("friend", "enemy"), ("arrive", "leave"), ("remember", "forget"),
        ("sweet", "sour"),
    ]

    static func opposites() -> [QuickstartFact] {
        oppositeTable.map { word, opposite in
            let answer = opposite.prefix(1).uppercased() + opposite.dropFirst()
            return QuickstartFact(
                key: "opposite:\(word)", category: .opposite,
                questions: ["What is the opposite of \"\(word)\"?", "What word means the opposite of \"\(word)\"?",
                            "What is the antonym of \"\(word)\"?", "Give me the opposite of the word \"\(word)\"."],
                answer: answer,
                direct: ["\(answer).", "\(answer) is the opposite of \(word).", "\(answer), the antonym of \(word)."],
                statement: "The opposite of \"\(word)\" is \"\(opposite)\".",
                background: ["Many words have an opposite, called an antonym.",
                             "Opposites help us describe the world by contrast.",
                             "Let's think about what \"\(word)\" means first."],
                inlineAnswer: opposite)
        }
    }
}

extension SplitMix64 {
    /// A uniform integer in `range` (modulo reduction; the tiny bias does not matter here, and
    /// unlike the standard library's it is the same on every platform and Swift version).
    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// One element of a non-empty array.
    mutating func pick<T>(_ items: [T]) -> T { items[int(in: 0...(items.count - 1))] }

    /// Fisher–Yates with this generator.
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) { items.swapAt(i, int(in: 0...i)) }
    }
}
