/// Parley's version, once: `parley --version`, `parley-relay --version`, the daemon's `version` method and
/// the man pages' headers (checked by a test) all show it.
public enum ParleyVersion {
    public static let number = "0.1.0"
    public static let string = "\(number) (protocol v\(ProtocolConstants.version))"
}
