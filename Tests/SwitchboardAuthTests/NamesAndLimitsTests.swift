import SwitchboardAuth
import Testing

@Suite("Display names, channel patterns, token buckets")
struct NamesAndLimitsTests {
    @Test("Names: trimmed, spaces collapsed; control, format, bidi, zero-width, look-alike and mixed-script refused")
    func names() {
        #expect(DisplayName.normalized("  Alice   B  ") == "Alice B")
        #expect(DisplayName.normalized("Zoë") == "Zoë")
        #expect(DisplayName.normalized("Дмитрий") == "Дмитрий")
        #expect(DisplayName.normalized("李小龍") == "李小龍")
        #expect(DisplayName.normalized("alice 🙂") == "alice 🙂")
        #expect(DisplayName.normalized(String(repeating: "a", count: 32)) != nil)
        let refused = [
            "", "   ", "\u{3000}", String(repeating: "a", count: 33), "al\u{0}ice", "al\u{7}ice", "ali\nce",
            "al\u{200B}ice",  // zero-width space
            "al\u{200D}ice",  // zero-width joiner
            "\u{202E}ecila",  // right-to-left override
            "alice\u{2066}",  // left-to-right isolate
            "al\u{FEFF}ice",  // byte-order mark
            "\u{430}lice",  // Cyrillic а among Latin letters
            "\u{3B1}lice",  // Greek alpha among Latin letters
            "ａｌｉｃｅ",  // fullwidth
            "\u{1D41A}lice",  // mathematical bold a
            "al\u{E000}ice",  // private use
            "ali\u{2028}ce",  // line separator
        ]
        for name in refused {
            #expect(DisplayName.normalized(name) == nil, "\(name.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    @Test("Patterns: * matches any run, literal parts in order")
    func patterns() throws {
        let team = try #require(ChannelPattern("team-*"))
        #expect(
            team.matches("team-red") && team.matches("team-") && !team.matches("steam-red") && !team.matches("team"))
        let middle = try #require(ChannelPattern("a*b*c"))
        #expect(middle.matches("abc") && middle.matches("axxbyyc") && !middle.matches("acb") && !middle.matches("ab"))
        #expect(try #require(ChannelPattern("*")).matches("anything"))
        #expect(try #require(ChannelPattern("lobby")).matches("lobby"))
        #expect(!(try #require(ChannelPattern("lobby")).matches("lobby2")))
        #expect(
            try #require(ChannelPattern("*-x")).matches("a-x") && !(try #require(ChannelPattern("*-x")).matches("a-xy"))
        )
        #expect(ChannelPattern("") == nil)
        #expect(ChannelPattern(String(repeating: "a", count: 129)) == nil)
    }

    @Test("A bucket of burst 40 and 20/s: 40 at once, then exactly 20 per second")
    func bucket() {
        let second: UInt64 = 1_000_000_000
        var bucket = TokenBucket(.init(rate: 20, burst: 40), now: 0)
        var taken = 0
        while bucket.take(now: 0) == nil { taken += 1 }
        #expect(taken == 40)
        #expect(bucket.take(now: 0) == second / 20, "the next token in 50 ms")
        taken = 0
        for step in 1...100 {  // one second in 10 ms steps
            while bucket.take(now: UInt64(step) * second / 100) == nil { taken += 1 }
        }
        #expect(taken == 20)
        // Never more than the burst, however long the wait.
        taken = 0
        while bucket.take(now: 3600 * second) == nil { taken += 1 }
        #expect(taken == 40)
        // A cost larger than the burst can never be taken; the wait says when the bucket is full.
        #expect(bucket.take(100, now: 3600 * second) == 2 * second)
    }
}
