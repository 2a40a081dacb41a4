import Foundation

/// Resident memory of this process from /proc (Linux; 0 where unavailable). Memory-mapped weights
/// count as file-backed pages the kernel can drop at will; anonymous pages are what zimage allocated.
public enum ProcessMemory {
    /// A field of /proc/self/status in bytes (`VmHWM`, `RssAnon`, `RssFile`, ...).
    public static func value(_ key: String) -> Int {
        // /proc files report size 0, so read to the end rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/status") else { return 0 }
        defer { try? handle.close() }
        let status = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        for line in status.split(separator: "\n") where line.hasPrefix(key + ":") {
            let kilobytes = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int($0) }.first ?? 0
            return kilobytes * 1024
        }
        return 0
    }

    /// Peak resident set (VmHWM), mapped weight pages included.
    public static var peakResidentBytes: Int { value("VmHWM") }
    /// Anonymous resident memory now (what zimage allocated itself).
    public static var allocatedBytes: Int { value("RssAnon") }
    /// File-backed resident memory now (mostly memory-mapped weights).
    public static var mappedBytes: Int { value("RssFile") }
}
