// Runs INSERT, UPDATE and DELETE through pgjdbc and prints each executeUpdate count, so the
// Rust test (tests/jdbc.rs) can check that JDBC sees PostgreSQL's row counts.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

public class ExecuteUpdate {
    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/awscc";
        try (Connection c = DriverManager.getConnection(url, "postgres", "")) {
            StringBuilder out = new StringBuilder();
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES (?, ?, ?)")) {
                p.setString(1, "jdbc-group");
                p.setLong(2, 30);
                p.setString(3, "us-east-1");
                out.append("insert=").append(p.executeUpdate());
            }
            try (Statement s = c.createStatement()) {
                out.append(" multi=").append(s.executeUpdate(
                    "INSERT INTO awscc.logs.log_groups (log_group_name, region) VALUES ('jdbc-a', 'us-east-1'), ('jdbc-b', 'us-east-1')"));
                out.append(" update=").append(s.executeUpdate(
                    "UPDATE awscc.logs.log_groups SET retention_in_days = 90 WHERE identifier = 'jdbc-group' AND region = 'us-east-1'"));
                try (ResultSet r = s.executeQuery(
                        "SELECT retention_in_days FROM awscc.logs.log_groups WHERE identifier = 'jdbc-group' AND region = 'us-east-1'")) {
                    r.next();
                    out.append(" retention=").append(r.getLong(1));
                }
            }
            try (PreparedStatement p = c.prepareStatement(
                    "DELETE FROM awscc.logs.log_groups WHERE identifier IN (?, ?, ?) AND region = 'us-east-1'")) {
                p.setString(1, "jdbc-group");
                p.setString(2, "jdbc-a");
                p.setString(3, "jdbc-b");
                out.append(" delete=").append(p.executeUpdate());
                out.append(" again=").append(p.executeUpdate());
            }
            try (Statement s = c.createStatement()) {
                s.executeUpdate("INSERT INTO awscc.logs.log_groups (log_group_name, retention_in_days, region) VALUES ('x', 'abc', 'us-east-1')");
                out.append(" bad=accepted");
            } catch (SQLException e) {
                out.append(" bad=").append(e.getSQLState());
            }
            System.out.println(out);
        }
    }
}
