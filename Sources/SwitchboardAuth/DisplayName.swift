/// Names people show each other (nicknames, a token's `name`): what is accepted, and in which form.
///
/// A name is 1 to 32 characters after trimming, with runs of spaces made one. Refused: control and format characters
/// (bidi overrides, zero-width spaces and joiners), line and paragraph separators, private-use and unassigned code
/// points, compatibility look-alikes (fullwidth letters, mathematical alphanumerics), and names that mix the Latin,
/// Greek and Cyrillic scripts (`аlice` with a Cyrillic `а`): the look-alikes that impersonate someone in a Latin
/// name. A name wholly in one of those scripts is accepted even if it resembles a name in another; that is why
/// identities, not names, are what tokens prove (see PROTOCOL.md).
public enum DisplayName {
    /// The longest name, in characters.
    public static let maxCharacters = 32

    /// `name` in its normal form, or `nil` when it is not acceptable.
    public static func normalized(_ name: String) -> String? {
        var scalars = String.UnicodeScalarView()
        var pendingSpace = false
        var scripts = Scripts()
        for scalar in name.unicodeScalars {
            let properties = scalar.properties
            switch properties.generalCategory {
            case .spaceSeparator:
                pendingSpace = !scalars.isEmpty
                continue
            case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .unassigned, .surrogate:
                return nil
            default:
                break
            }
            if Self.isCompatibilityLookAlike(scalar) { return nil }
            scripts.insert(scalar)
            if pendingSpace {
                scalars.append(" ")
                pendingSpace = false
            }
            scalars.append(scalar)
        }
        let result = String(scalars)
        guard !result.isEmpty, result.count <= Self.maxCharacters, !scripts.isMixed else { return nil }
        return result
    }

    /// Fullwidth and halfwidth forms, mathematical alphanumerics, enclosed and letterlike look-alikes of ASCII.
    private static func isCompatibilityLookAlike(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0xFF01...0xFFEF, 0x1D400...0x1D7FF, 0x2100...0x214F, 0x2460...0x24FF, 0x1F100...0x1F1FF: true
        default: false
        }
    }

    /// Which of the scripts with look-alike letters a name's letters belong to.
    private struct Scripts {
        private var latin = false
        private var greek = false
        private var cyrillic = false

        mutating func insert(_ scalar: Unicode.Scalar) {
            guard scalar.properties.isAlphabetic else { return }
            switch scalar.value {
            case 0x41...0x5A, 0x61...0x7A, 0xC0...0x24F, 0x1E00...0x1EFF, 0x2C60...0x2C7F, 0xA720...0xA7FF:
                self.latin = true
            case 0x370...0x3FF, 0x1F00...0x1FFF: self.greek = true
            case 0x400...0x52F, 0x1C80...0x1C8F, 0x2DE0...0x2DFF, 0xA640...0xA69F: self.cyrillic = true
            default: break
            }
        }

        var isMixed: Bool { [self.latin, self.greek, self.cyrillic].filter { $0 }.count > 1 }
    }
}
